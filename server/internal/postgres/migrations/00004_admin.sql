-- +goose Up
-- Administration: a session always carries its user's current system
-- roles, and a deactivated user gets no new session. The app copies the
-- roles at login and revokes sessions on deactivation, but a login that
-- read the user just before a role change or a deactivation committed
-- would otherwise insert a session with the old roles, or a live session
-- for a deactivated user, after the change had swept the others. Reading
-- the user row FOR SHARE waits for such a change to commit and sees its
-- result; a change that starts after the read waits for the login to
-- commit, and then updates or revokes the new session with the others.

-- +goose StatementBegin
CREATE FUNCTION sessions_follow_user() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    u_roles     text;
    u_delete_at bigint;
BEGIN
    SELECT roles, delete_at INTO u_roles, u_delete_at FROM users WHERE id = NEW.user_id FOR SHARE;
    IF NOT FOUND THEN
        RETURN NEW; -- the foreign key reports it
    END IF;
    IF u_delete_at <> 0 THEN
        -- Skipped, not an error: the login answers as if the user had
        -- been deactivated a moment after it, and the token is refused.
        RETURN NULL;
    END IF;
    NEW.roles := u_roles;
    RETURN NEW;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER sessions_follow_user BEFORE INSERT ON sessions
    FOR EACH ROW EXECUTE FUNCTION sessions_follow_user();

-- +goose Down
-- Garrison's migrations are forward-only; see docs/operations.md.
SELECT 'down migrations are not supported';
