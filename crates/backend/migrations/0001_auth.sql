-- Identity, RBAC and audit trail (backend.md §13.2). snake_case columns, timestamptz everywhere,
-- UUID defaults from gen_random_uuid() (core since PostgreSQL 13). Other §13.2 tables (policies,
-- alerts, ...) belong to the features that use them and come in later migrations.

CREATE TABLE users (
    id                        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Stored lowercase by the application; the unique index makes e-mails case-insensitive (F22).
    email                     varchar(255) NOT NULL,
    -- argon2id PHC string, or a legacy bcrypt hash that is upgraded on the next login.
    password                  varchar(255) NOT NULL,
    first_name                varchar(100),
    last_name                 varchar(100),
    avatar                    varchar(500),
    is_active                 boolean      NOT NULL DEFAULT true,
    preferences               jsonb        NOT NULL DEFAULT '{}',
    -- SHA-256 hex of the reset token; the token itself is never stored (F7).
    password_reset_token_hash char(64),
    password_reset_expires_at timestamptz,
    last_login_at             timestamptz,
    created_at                timestamptz  NOT NULL DEFAULT now(),
    updated_at                timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT users_email_lowercase CHECK (email = lower(email))
);
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE INDEX users_is_active_idx ON users (is_active);
CREATE INDEX users_created_at_idx ON users (created_at DESC);
CREATE INDEX users_password_reset_token_hash_idx ON users (password_reset_token_hash);

-- updated_at maintained on every UPDATE, whoever writes the row.
CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;
CREATE TRIGGER users_set_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- One row per issued refresh token (F4): id = the JWT's jti, token_hash = SHA-256 of the whole
-- JWT (no 72-byte truncation), family_id groups a login's rotation chain for reuse detection.
CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY,
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id   uuid        NOT NULL,
    token_hash  char(64)    NOT NULL UNIQUE,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    replaced_by uuid,
    ip_address  varchar(45),
    user_agent  text
);
CREATE INDEX refresh_tokens_user_id_idx ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_family_id_idx ON refresh_tokens (family_id);

CREATE TABLE roles (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        varchar(50) NOT NULL UNIQUE CHECK (name IN ('admin', 'user', 'auditor', 'service')),
    description text,
    -- Informational only: no code consults it (§3.1).
    permissions jsonb       NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER roles_set_updated_at BEFORE UPDATE ON roles
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Seed roles (§5.9); idempotent by name.
INSERT INTO roles (name, description, permissions) VALUES
    ('admin', 'Administrator with full access', '{"api":["*"],"data":["*"],"system":["*"]}'),
    ('user', 'Regular user with limited access', '{"api":["read","update"],"data":["read"]}'),
    ('auditor', 'Read-only access to logs and audit trails', '{"api":["read"],"logs":["read","export"],"audit":["read","export"]}'),
    ('service', 'Service account', '{"api":["read"],"policies":["write"]}')
ON CONFLICT (name) DO NOTHING;

CREATE TABLE user_roles (
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id     uuid        NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    assigned_at timestamptz NOT NULL DEFAULT now(),
    assigned_by uuid        REFERENCES users (id) ON DELETE SET NULL,
    PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_role_id_idx ON user_roles (role_id);

-- Append-only audit trail (§12). user_id has no FK so events survive the user's deletion.
CREATE TABLE audit_events (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_type  varchar(50)  NOT NULL,
    user_id     uuid,
    entity_type varchar(100),
    entity_id   varchar(255),
    details     jsonb        NOT NULL DEFAULT '{}',
    ip_address  varchar(64),
    user_agent  text,
    created_at  timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX audit_events_type_created_idx ON audit_events (event_type, created_at DESC);
CREATE INDEX audit_events_user_created_idx ON audit_events (user_id, created_at DESC);
CREATE INDEX audit_events_created_idx ON audit_events (created_at DESC);
