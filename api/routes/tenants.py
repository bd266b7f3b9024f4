"""What a tenant reads and sets of its own, beside its jobs: its limits and usage, its webhooks'
signing secret, its pronunciation lexicon, and the voices it can ask for."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import FarmDep, TenantDep
from api.errors import InvalidInput, RequestUnreadable
from api.problems import KEYED, responses
from api.progress_shapes import IsoDay, TenantUsageOut
from api.schemas import LexiconIn, LimitsOut, VoiceOut, WebhookSecretOut
from api.services import tenants
from shared.speech.factory import resolve_engine_name
from shared.text.voices import VOICES

router = APIRouter()


@router.get("/limits", response_model=LimitsOut, responses=responses(*KEYED))
def get_limits(farm: FarmDep, tenant: TenantDep) -> LimitsOut:
    """The tenant's share of the GPUs and its limits (an operator sets them with
    ``lyre tenants set``), and the characters it has submitted today."""
    return tenants.tenant_limits(farm, tenant)


@router.get("/usage", response_model=TenantUsageOut, responses=responses(*KEYED, InvalidInput))
def get_usage(
    farm: FarmDep,
    tenant: TenantDep,
    first: Annotated[
        IsoDay | None, Query(alias="from", description="UTC day; default: `to` - 29")
    ] = None,
    last: Annotated[
        IsoDay | None, Query(alias="to", description="UTC day, included; default: today")
    ] = None,
) -> TenantUsageOut:
    """The tenant's use per UTC day: characters submitted, and the audio, speech engine (GPU)
    and CPU seconds and bytes stored of its jobs that ended that day (a job's costs are given
    when it ends; a chapter redone later adds what the redo cost)."""
    return tenants.tenant_usage(farm, tenant, first, last)


@router.get("/webhooks/secret", response_model=WebhookSecretOut, responses=responses(*KEYED))
def webhook_secret(tenant: TenantDep) -> WebhookSecretOut:
    """The secret the tenant's webhooks are signed with, for its receivers to verify them."""
    return WebhookSecretOut(secret=tenant.webhook_secret)


@router.post(
    "/webhooks/secret/rotate", response_model=WebhookSecretOut, responses=responses(*KEYED)
)
def rotate_webhook_secret(farm: FarmDep, tenant: TenantDep) -> WebhookSecretOut:
    """A new secret: every delivery sent from now on, retries included, is signed with it."""
    return WebhookSecretOut(secret=tenants.rotate_webhook_secret(farm, tenant))


@router.get("/lexicon", response_model=LexiconIn, responses=responses(*KEYED))
def get_lexicon(tenant: TenantDep) -> LexiconIn:
    """The tenant's pronunciation lexicon, applied to every job under a request's own."""
    return LexiconIn(entries=tenant.lexicon or {})


@router.put(
    "/lexicon",
    response_model=LexiconIn,
    responses=responses(*KEYED, InvalidInput, RequestUnreadable),
)
def put_lexicon(body: LexiconIn, farm: FarmDep, tenant: TenantDep) -> LexiconIn:
    return LexiconIn(entries=tenants.set_lexicon(farm, tenant, body.entries))


@router.get("/voices", response_model=list[VoiceOut], responses=responses(*KEYED))
def voices(farm: FarmDep, tenant: TenantDep) -> list[VoiceOut]:
    """Every voice, with the engine this farm speaks it with (every engine speaks every voice:
    espeak-ng with a variant of its own for each)."""
    engine, _ = resolve_engine_name(farm.settings)
    return [VoiceOut(id=voice, engines=[engine]) for voice in VOICES]
