-- When every session of a user was last ended (logout, deactivation, a password change or
-- reset, a reused refresh token). Access tokens are not stored, so live Socket.IO
-- connections are checked against this: a socket that connected before it is closed, and a
-- token issued before it cannot open a new one (realtime/socket.rs).
ALTER TABLE users ADD COLUMN sessions_revoked_at TIMESTAMPTZ;
