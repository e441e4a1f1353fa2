-- Chat store and read models of Luna Triggers. Every statement is idempotent,
-- so the worker and the gateway apply this file at every start.

CREATE TABLE IF NOT EXISTS chat_sessions (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     text NOT NULL,
    title       text NOT NULL,
    -- 'chat' for sessions the user opened, 'luna_updates' for the one
    -- session per user that receives proactive messages by default.
    kind        text NOT NULL DEFAULT 'chat',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS chat_sessions_one_updates_per_user
    ON chat_sessions (user_id) WHERE kind = 'luna_updates';
CREATE INDEX IF NOT EXISTS chat_sessions_user ON chat_sessions (user_id);

CREATE TABLE IF NOT EXISTS chat_messages (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id     uuid NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    user_id        text NOT NULL,
    role           text NOT NULL CHECK (role IN ('user', 'assistant')),
    content        text NOT NULL,
    metadata       jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Deterministic id of the proactive occurrence; the unique index makes a
    -- redelivered occurrence a no-op.
    occurrence_id  text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    read_at        timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS chat_messages_occurrence
    ON chat_messages (occurrence_id) WHERE occurrence_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS chat_messages_session ON chat_messages (session_id, created_at);
CREATE INDEX IF NOT EXISTS chat_messages_unread
    ON chat_messages (user_id) WHERE read_at IS NULL AND occurrence_id IS NOT NULL;

-- Read model of the triggers table, fed from the outcomes topic.
CREATE TABLE IF NOT EXISTS triggers (
    user_id     text NOT NULL,
    trigger_id  text NOT NULL,
    name        text NOT NULL,
    kind        text NOT NULL,
    enabled     boolean NOT NULL,
    definition  jsonb NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (user_id, trigger_id)
);

-- One row per outcome of every stage: matched, delivered, failed, skipped,
-- missed, and trigger changes.
CREATE TABLE IF NOT EXISTS trigger_history (
    outcome_id     text PRIMARY KEY,
    occurrence_id  text,
    user_id        text NOT NULL,
    trigger_id     text,
    source         text,
    stage          text NOT NULL,
    status         text NOT NULL,
    reason         text,
    error          text,
    summary        jsonb NOT NULL DEFAULT '{}'::jsonb,
    occurred_at    timestamptz,
    recorded_at    timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS trigger_history_user ON trigger_history (user_id, recorded_at DESC);
CREATE INDEX IF NOT EXISTS trigger_history_occurrence ON trigger_history (occurrence_id);

-- Read model of the push subscriptions table, fed from the outcomes topic.
-- The worker keeps its own copy in a faust table and never reads this one.
CREATE TABLE IF NOT EXISTS push_subscriptions (
    user_id          text NOT NULL,
    subscription_id  text NOT NULL,
    endpoint         text NOT NULL,
    p256dh           text NOT NULL,
    auth             text NOT NULL,
    user_agent       text,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (user_id, subscription_id)
);

-- One row per occurrence and device that the push sink has finished with
-- (accepted by the push service, or the subscription was gone), so that a
-- redelivered delivery is not pushed twice.
CREATE TABLE IF NOT EXISTS push_sends (
    occurrence_id    text NOT NULL,
    subscription_id  text NOT NULL,
    user_id          text NOT NULL,
    status           text NOT NULL,
    http_status      integer,
    attempts         integer NOT NULL,
    finished_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (occurrence_id, subscription_id)
);

-- Read model of the worker's hooks table, fed from the outcomes topic; the
-- gateway looks up hooks here to verify webhook calls. ``definition``
-- contains the hook's signing secrets.
CREATE TABLE IF NOT EXISTS webhook_hooks (
    hook_id     text PRIMARY KEY,
    user_id     text NOT NULL,
    name        text NOT NULL,
    scheme      text NOT NULL,
    enabled     boolean NOT NULL,
    definition  jsonb NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_hooks_user ON webhook_hooks (user_id);
