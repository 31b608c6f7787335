"""A node, assembled: storage, coordinator and the HTTP API under one service."""

from __future__ import annotations

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.error import CannotListenError
from twisted.logger import ILogObserver, Logger, jsonFileLogObserver

import gossipdht
from gossipdht.api import RestAPI
from gossipdht.committer import GroupCommitter
from gossipdht.config import Address, NodeConfig
from gossipdht.coordinator import Coordinator
from gossipdht.hlc import HybridLogicalClock
from gossipdht.request import Site
from gossipdht.storage import open_store


class StartupError(SystemExit):
    """Ends start-up with one line on stderr and exit status 1, no traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(f"gossipdht: {message}")


class NodeService(MultiService):
    log = Logger()

    def __init__(self, config: NodeConfig, reactor=None) -> None:
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor
        self.config = config
        self._reactor = reactor
        try:
            self.store = open_store(config.storage, config.data_dir)
        except Exception as e:
            raise StartupError(f"--data-dir: cannot open storage in {config.data_dir}: {e}") from None
        self.committer = GroupCommitter(self.store, reactor)
        self.coordinator = Coordinator(
            config.name, self.store, self.committer, HybridLogicalClock(reactor.seconds)
        )
        self.site = Site(RestAPI(self.coordinator, config.max_value_bytes).resource(),
                         max_body_bytes=config.max_value_bytes)
        self.port = None

    def setServiceParent(self, parent) -> None:
        # twistd starts logging after it built the application: a log observer set as
        # the application's component is the one it uses (as in a .tac file).
        if self.config.log_format == "json" and hasattr(parent, "setComponent"):
            import sys

            parent.setComponent(ILogObserver, jsonFileLogObserver(sys.stdout))
        super().setServiceParent(parent)

    def privilegedStartService(self) -> None:
        try:
            self.port = self._reactor.listenTCP(self.config.port, self.site, interface=self.config.bind)
        except CannotListenError as e:
            raise StartupError(
                f"--port: cannot listen on {Address(self.config.bind, self.config.port)}: {e.socketError}"
            ) from None
        super().privilegedStartService()

    def startService(self) -> None:
        super().startService()
        self.log.info("gossipdht {version} started: {config}", version=gossipdht.__version__,
                      config=self.config.describe())

    def stopService(self) -> Deferred[None]:
        return ensureDeferred(self._stop())

    async def _stop(self) -> None:
        await super().stopService()
        if self.port is not None:
            await self.port.stopListening()
        self.committer.flush()
        self.store.close()
