-- Login attempts per lowercased e-mail, for the account lockout (auth/lockout.rs).
--
-- The lockout lives here rather than in Redis so that it never fails open: a login needs
-- PostgreSQL anyway (to find the user), so the counter is available whenever a password can
-- be checked at all. An attempt is counted, under this row's lock, before its password is
-- hashed, which bounds the passwords verified per window by the threshold however many
-- requests arrive at once.
--
-- attempts      attempts in the current window, which ends at window_ends
-- level         lockouts in a row; reset when level_ends (24 h after the last lockout) passes
-- locked_until  the end of the current lockout, if any
-- expires_at    when the row stops mattering (the latest of the three ends): stale rows are
--               removed when a new e-mail is first counted
CREATE TABLE login_attempts (
    email        TEXT PRIMARY KEY,
    attempts     INTEGER     NOT NULL DEFAULT 0,
    window_ends  TIMESTAMPTZ NOT NULL DEFAULT now(),
    level        INTEGER     NOT NULL DEFAULT 0,
    level_ends   TIMESTAMPTZ NOT NULL DEFAULT now(),
    locked_until TIMESTAMPTZ,
    expires_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX login_attempts_expires_at_idx ON login_attempts (expires_at);
