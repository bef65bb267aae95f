"""Powertools Tracer's X-Ray provider, loaded when the first subsegment opens, not at import.

Constructing `Tracer()` loads the X-Ray SDK and patching botocore imports botocore's client
machinery: both at init, before the function knows whether it will be traced or call AWS at all.
This provider gives Tracer the same recorder, loaded and patched on first use: the first request
of a sampled invocation still shows the handler, the methods Tracer captures, the AWS calls and
the HTTP calls as subsegments (the first use comes before any client is made, so every client is
patched), and a process whose tracing is off never loads the SDK's recorder.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from functools import cached_property
from typing import Any

from aws_lambda_powertools.tracing.base import BaseProvider


class Untraced:
    """What a subsegment is when tracing is off: takes annotations and metadata, keeps nothing."""

    def put_annotation(self, key: str, value: Any) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        pass

    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None:
        pass


class LazyXRayProvider(BaseProvider):
    def __init__(self, patch_modules: Sequence[str]) -> None:
        self._patch_modules = tuple(patch_modules)

    @staticmethod
    def enabled() -> bool:
        # The SDK's switch, which Tracer turns off (POWERTOOLS_TRACE_DISABLED, outside Lambda);
        # `aws_xray_sdk` itself is a small module: the recorder lives in `aws_xray_sdk.core`.
        import aws_xray_sdk

        return bool(aws_xray_sdk.global_sdk_config.sdk_enabled())

    @cached_property
    def recorder(self) -> Any:
        from aws_xray_sdk.core import patch, xray_recorder

        # What Tracer sets for its own X-Ray provider: each subsegment is sent when it closes.
        xray_recorder.configure(streaming_threshold=0)
        patch(self._patch_modules)
        return xray_recorder

    @contextlib.contextmanager
    def in_subsegment(self, name: str | None = None, **kwargs: Any) -> Iterator[Any]:
        if not self.enabled():
            yield Untraced()
            return
        with self.recorder.in_subsegment(name=name, **kwargs) as subsegment:
            yield subsegment

    @contextlib.asynccontextmanager
    async def in_subsegment_async(self, name: str | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        if not self.enabled():
            yield Untraced()
            return
        async with self.recorder.in_subsegment_async(name=name, **kwargs) as subsegment:
            yield subsegment

    def put_annotation(self, key: str, value: Any) -> None:
        if self.enabled():
            self.recorder.put_annotation(key=key, value=value)

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        if self.enabled():
            self.recorder.put_metadata(key=key, value=value, namespace=namespace)

    def patch(self, modules: Sequence[str]) -> None:
        """Patched when the recorder loads (Tracer calls this at construction, too early)."""
        self._patch_modules = tuple(dict.fromkeys((*self._patch_modules, *modules)))

    def patch_all(self) -> None:
        raise NotImplementedError("patch only what the bridge uses: name the modules")
