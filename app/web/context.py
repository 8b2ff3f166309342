"""What the API, the chat UI and the widget share: one service, one model runner, the limits."""

from __future__ import annotations

from app.service import SanadService
from app.settings import Settings
from app.web.conversations import ConversationStore
from app.web.guard import Listen, RateLimiter, own_origins, token_valid
from app.web.runner import ModelRunner


class WebContext:
    """The web's view of one `SanadService`; its settings are the only settings."""

    def __init__(self, service: SanadService, listen: Listen | None = None):
        self.service = service
        self.listen = listen
        settings = service.settings
        self.runner = ModelRunner(settings.concurrent_answers, settings.queue_deadline_s)
        service.share_model(self.runner.model_lock)  # answers run at once, model calls in turn
        self.limiter = RateLimiter.per_minute(settings.rate_limit_per_minute)
        self.upload_limiter = RateLimiter.per_hour(settings.uploads_per_hour)
        self.conversations = ConversationStore(
            settings.max_conversations, settings.conversation_minutes * 60.0,
            max(settings.history_turns, 1))
        self.own_origins = own_origins(settings, listen)

    @property
    def settings(self) -> Settings:
        return self.service.settings

    @property
    def uploads_open(self) -> bool:
        """Web uploads need the admin token, or a server only this machine can reach."""
        return self.settings.admin_token is not None or (
            self.listen is not None and self.listen.loopback_only)

    def may_upload(self, token: str | None) -> bool:
        admin = self.settings.admin_token
        if admin is None:
            return self.uploads_open
        return token_valid(admin.get_secret_value(), token)

    def warm_up(self) -> None:
        """Load the index, the models and the prompts' fixed parts before the first question."""
        self.service.warm_up()
