-- Accounts are Google accounts: a user is the Google `sub` (users.google_sub,
-- already UNIQUE), and the email is only the account's last verified address.
-- Google may give an address to another account (a deleted account's address
-- reused in a Workspace domain), so two accounts can carry the same email: the
-- new owner gets an account of its own, never the old one's streams.
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_email_key;
-- Rows not yet bound to a sub (made before this migration, or by hand) are
-- matched by email once, at their next sign-in; at most one per email.
CREATE UNIQUE INDEX IF NOT EXISTS users_unbound_email ON users (email) WHERE google_sub IS NULL;

-- The first account that signed in with each email keeps it: platform
-- admin (ADMIN_EMAILS) is granted to that account only, so an address that
-- changes hands does not carry the grant with it. Backfilled from the users
-- table, whose emails were unique until now.
CREATE TABLE IF NOT EXISTS email_claims (
    email       text PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    claimed_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO email_claims (email, user_id)
    SELECT lower(email), id FROM users ORDER BY created_at ON CONFLICT (email) DO NOTHING;
