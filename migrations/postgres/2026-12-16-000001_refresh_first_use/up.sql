-- The first use of a live refresh token, as one server-side function: PL/pgSQL keeps the plan
-- of its statement per connection, so a rotation is neither parsed nor planned on every call.
-- Touch the live session, mark the parent used while it is unused, unrevoked and unexpired
-- (and its session, if any, live), and insert its successor; do nothing once
-- clock_timestamp() has passed p_deadline_ms (Unix milliseconds), so a call delayed in the
-- network commits nothing. Returns the successor, or no row: the caller then decides what
-- the use is. (Reading the user in the same function measured slower than the separate,
-- prepared lookup on the same connection.)
CREATE FUNCTION sigil_refresh_first_use(
    p_parent TEXT, p_now BIGINT, p_session_cutoff BIGINT, p_successor TEXT,
    p_deadline_ms BIGINT, p_idle BIGINT
) RETURNS SETOF refresh_tokens
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    WITH live AS (
        UPDATE sessions s SET last_seen_at = p_now
        WHERE s.id_hash = (SELECT r.session_hash FROM refresh_tokens r WHERE r.id_hash = p_parent)
          AND s.expires_at > p_now AND s.last_seen_at > p_session_cutoff
        RETURNING s.id_hash
    ), parent AS (
        UPDATE refresh_tokens r SET used_at = p_now
        WHERE r.id_hash = p_parent AND r.used_at IS NULL AND NOT r.revoked
          AND r.expires_at > p_now AND r.family_expires_at > p_now
          AND (r.session_hash IS NULL OR r.session_hash IN (SELECT l.id_hash FROM live l))
          AND clock_timestamp() < to_timestamp(p_deadline_ms / 1000.0)
        RETURNING r.family_id, r.client_id, r.user_id, r.scope, r.auth_time, r.session_hash,
          r.family_expires_at
    )
    INSERT INTO refresh_tokens AS t (id_hash, family_id, client_id, user_id, scope, auth_time,
        session_hash, created_at, expires_at, family_expires_at, used_at, revoked)
    SELECT p_successor, p.family_id, p.client_id, p.user_id, p.scope, p.auth_time,
        p.session_hash, p_now, LEAST(p_now + p_idle, p.family_expires_at), p.family_expires_at,
        NULL, false
    FROM parent p
    ON CONFLICT (id_hash) DO NOTHING
    RETURNING t.*;
END
$$;
