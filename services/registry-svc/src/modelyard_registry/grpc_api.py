"""RegistryService: translate protobuf ⇄ commands and reads, nothing else."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from grpc import aio
from typing_extensions import override

from modelyard.v1 import events_pb2, registry_pb2, registry_pb2_grpc
from modelyard_artifacts.signed_urls import UrlSigner
from modelyard_events.domain_errors import InvalidArgument
from modelyard_events.schemas.bounds import checked_identifier
from modelyard_events.store.ports import EventSource
from modelyard_grpc import caller_of, current_principal, read_events, require_org_access
from modelyard_registry.app.commands import RegistryCommands
from modelyard_registry.convert import statuses_from_proto, timestamp, version_to_proto
from modelyard_registry.domain.module import DEFAULT_ENVIRONMENT
from modelyard_registry.downloads import audience_for, mint_urls
from modelyard_registry.projections.queries import RegistryViewReader

Context = aio.ServicerContext[Any, Any]


class RegistryServicer(registry_pb2_grpc.RegistryServiceServicer):
    """modelyard.v1.RegistryService over RegistryCommands, the view and the URL signer."""

    def __init__(
        self,
        commands: RegistryCommands,
        reader: RegistryViewReader,
        log: EventSource,
        signer: UrlSigner,
        public_url: str,
        default_ttl_s: int,
        clock: Callable[[], datetime],
    ) -> None:
        self._commands, self._reader, self._log = commands, reader, log
        self._signer, self._public_url, self._ttl_s, self._clock = signer, public_url, default_ttl_s, clock

    @override
    async def GetVersion(
        self, request: registry_pb2.ModelVersionRef, context: Context
    ) -> registry_pb2.ModelVersion:
        _, version = await self._commands.load(_version_id(request.version_id))
        require_org_access(current_principal(), version.registered.org_id)
        return version_to_proto(version)

    @override
    async def ListVersions(
        self, request: registry_pb2.ListVersionsRequest, context: Context
    ) -> registry_pb2.ListVersionsResponse:
        page = await self._reader.page(
            checked_identifier(request.org_id, "org_id") or None,
            checked_identifier(request.ai_module, "ai_module") or None,
            statuses_from_proto(list(request.statuses)),
            request.page_size,
            request.page_token,
        )
        modules: dict[tuple[str, str], Any] = {}
        versions = []
        for row in page.rows:
            key = (row.org_id, row.ai_module)
            if key not in modules:
                modules[key] = await self._commands.load_module(*key)
            versions.append(version_to_proto(modules[key].get(row.version_id)))
        return registry_pb2.ListVersionsResponse(versions=versions, next_page_token=page.next_page_token)

    @override
    async def EvaluateVersion(
        self, request: registry_pb2.EvaluateRequest, context: Context
    ) -> registry_pb2.ModelVersion:
        version = await self._commands.evaluate(
            _version_id(request.version_id), request.dataset_uri, request.split, caller_of(context)
        )
        return version_to_proto(version)

    @override
    async def ApproveVersion(
        self, request: registry_pb2.VersionCommand, context: Context
    ) -> registry_pb2.ModelVersion:
        return version_to_proto(
            await self._commands.approve(_version_id(request.version_id), caller_of(context))
        )

    @override
    async def RejectVersion(
        self, request: registry_pb2.VersionCommand, context: Context
    ) -> registry_pb2.ModelVersion:
        version = await self._commands.reject(
            _version_id(request.version_id), request.reason, caller_of(context)
        )
        return version_to_proto(version)

    @override
    async def ReleaseVersion(
        self, request: registry_pb2.ReleaseRequest, context: Context
    ) -> registry_pb2.ModelVersion:
        version = await self._commands.release(
            _version_id(request.version_id),
            request.environment or DEFAULT_ENVIRONMENT,
            request.release_notes,
            caller_of(context),
        )
        return version_to_proto(version)

    @override
    async def DeprecateVersion(
        self, request: registry_pb2.VersionCommand, context: Context
    ) -> registry_pb2.ModelVersion:
        version = await self._commands.deprecate(
            _version_id(request.version_id), request.reason, caller_of(context)
        )
        return version_to_proto(version)

    @override
    async def RollbackVersion(
        self, request: registry_pb2.RollbackRequest, context: Context
    ) -> registry_pb2.RollbackResponse:
        released, deprecated = await self._commands.rollback(
            _version_id(request.target_version_id, "target_version_id"),
            request.environment or DEFAULT_ENVIRONMENT,
            request.reason,
            caller_of(context),
        )
        return registry_pb2.RollbackResponse(
            released=version_to_proto(released), deprecated=version_to_proto(deprecated)
        )

    @override
    async def RenumberVersion(
        self, request: registry_pb2.RenumberRequest, context: Context
    ) -> registry_pb2.ModelVersion:
        version = await self._commands.renumber(
            _version_id(request.version_id), request.semantic_version, request.reason, caller_of(context)
        )
        return version_to_proto(version)

    @override
    async def GetDownloadUrl(
        self, request: registry_pb2.DownloadUrlRequest, context: Context
    ) -> registry_pb2.DownloadUrl:
        _, version = await self._commands.load(_version_id(request.version_id))
        audience = audience_for(
            current_principal(), version, checked_identifier(request.audience, "audience") or ""
        )
        minted = mint_urls(
            self._signer, self._public_url, version, audience, request.ttl_s or self._ttl_s, self._clock()
        )
        reply = registry_pb2.DownloadUrl(
            url=minted.url,
            expires_at=timestamp(minted.expires_at),
            artifact_sha256=version.registered.artifact_sha256,
            artifact_size_bytes=version.registered.artifact_size_bytes,
            config_url=minted.config_url,
        )
        if version.approval is not None:
            reply.signed_manifest_json = version.approval.manifest.manifest_json
        return reply

    @override
    async def ReadEvents(
        self, request: events_pb2.ReadEventsRequest, context: Context
    ) -> events_pb2.ReadEventsResponse:
        return await read_events(self._log, request)


def _version_id(value: str, field: str = "version_id") -> str:
    checked = checked_identifier(value, field)
    if not checked:
        raise InvalidArgument(field, "name the model version (its id, from yard models list)")
    return checked
