// EPUBCheck over several books in one Java process (tests/read_along.py's check_all): each book
// through EPUBCheck's own command-line entry, as `java -jar epubcheck.jar BOOK --json REPORT`
// runs it, without paying Java's start for each. Run as a source file (Java 11 and later).
public class EpubCheckAll {
    public static void main(String[] books) {
        for (String book : books) {
            String[] args = {book, "--json", book + ".epubcheck.json"};
            new com.adobe.epubcheck.tool.EpubChecker().run(args);
        }
    }
}
