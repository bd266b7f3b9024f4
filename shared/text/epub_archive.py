"""An EPUB's zip, read with a budget (the declared sizes can lie: what is read is counted), and
its documents: XML (the container, the package, the NCX) and the XHTML pages, a page that is
not well-formed read as HTML, as reading systems read it, with a warning."""

from __future__ import annotations

import posixpath
import zipfile
from dataclasses import dataclass
from io import BytesIO
from urllib.parse import unquote
from xml.etree.ElementTree import Element

from shared.text.markup import MalformedMarkup, parse_html_tree, parse_xhtml, parse_xml

DEFAULT_MAX_UNPACKED = 256 * 2**20


class BookRefused(ValueError):
    """The book cannot be read."""


@dataclass(frozen=True)
class Item:
    """A file the package's manifest lists."""

    path: str  # in the archive
    media_type: str
    properties: frozenset[str]


class Archive:
    def __init__(self, data: bytes, max_unpacked: int) -> None:
        try:
            self.zip = zipfile.ZipFile(BytesIO(data))
        except zipfile.BadZipFile:
            raise BookRefused("not an EPUB: the file is not a zip archive") from None
        self.budget = max_unpacked
        declared = sum(info.file_size for info in self.zip.infolist())
        if declared > max_unpacked:
            raise BookRefused(self._bomb())
        self.names = set(self.zip.namelist())
        self.warnings: list[str] = []  # what was read otherwise than written

    def _bomb(self) -> str:
        return f"the book unpacks to more than {self.budget // 2**20} MiB"

    def read(self, name: str) -> bytes:
        if name not in self.names:
            raise BookRefused(f"{name} is not in the book")
        try:
            with self.zip.open(name) as member:
                data = member.read(self.budget + 1)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise BookRefused(f"{name} cannot be unpacked ({exc})") from None
        self.budget -= len(data)
        if self.budget < 0:
            raise BookRefused(self._bomb())
        return data

    def xml(self, name: str) -> Element:
        try:
            return parse_xml(self.read(name))
        except MalformedMarkup as exc:
            raise BookRefused(f"{name}: {exc}") from None

    def page(self, name: str) -> Element:
        """A content document as XHTML; one that is not well-formed XML is read as HTML is,
        and the book's warnings say so."""
        data = self.read(name)
        try:
            return parse_xhtml(data)
        except MalformedMarkup as exc:
            self.warnings.append(f"{name} is {exc}: read as HTML")
            return parse_html_tree(data.decode("utf-8", errors="replace"))


def resolve(base: str, href: str) -> str:
    """The archive's path of ``href`` as written in the document at ``base``, without its
    fragment."""
    return posixpath.normpath(posixpath.join(posixpath.dirname(base), unquote(href.split("#")[0])))


def fragment(href: str) -> str:
    return unquote(href.partition("#")[2])
