//! The one diesel schema, valid for both backends (times are BIGINT Unix seconds, lists are JSON
//! text). Kept by hand in step with `migrations/{sqlite,postgres}`.

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        alg -> Text,
        private_key -> Binary,
        public_jwk -> Text,
        public_pem -> Text,
        created_at -> BigInt,
        activates_at -> BigInt,
        deactivates_at -> Nullable<BigInt>,
        retires_at -> Nullable<BigInt>,
        unpublishes_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    clients (client_id) {
        client_id -> Text,
        name -> Text,
        public -> Bool,
        secret_hash -> Nullable<Binary>,
        previous_secret_hash -> Nullable<Binary>,
        previous_secret_expires_at -> Nullable<BigInt>,
        grants -> Text,
        scopes -> Text,
        audiences -> Text,
        roles -> Text,
        redirect_uris -> Text,
        post_logout_redirect_uris -> Text,
        pkce -> Text,
        jwks -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        first_party -> Bool,
        id_token_alg -> Text,
        web_origins -> Text,
        access_token_alg -> Nullable<Text>,
    }
}

diesel::table! {
    consents (user_id, client_id) {
        user_id -> Text,
        client_id -> Text,
        scope -> Text,
        granted_at -> BigInt,
    }
}

diesel::table! {
    meta (name) {
        name -> Text,
        value -> BigInt,
    }
}

diesel::table! {
    leases (name) {
        name -> Text,
        holder -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        email -> Nullable<Text>,
        email_verified -> Bool,
        password_hash -> Text,
        disabled -> Bool,
        roles -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        password_changed_at -> BigInt,
    }
}

diesel::table! {
    sessions (id_hash) {
        id_hash -> Text,
        user_id -> Text,
        auth_time -> BigInt,
        created_at -> BigInt,
        last_seen_at -> BigInt,
        expires_at -> BigInt,
        amr -> Text,
    }
}

diesel::table! {
    refresh_tokens (id_hash) {
        id_hash -> Text,
        family_id -> Text,
        client_id -> Text,
        user_id -> Text,
        scope -> Text,
        auth_time -> BigInt,
        session_hash -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
        family_expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        revoked -> Bool,
    }
}

diesel::table! {
    revocations (id) {
        id -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    audit_events (seq) {
        seq -> BigInt,
        at -> BigInt,
        kind -> Text,
        actor -> Text,
        subject -> Nullable<Text>,
        client_id -> Nullable<Text>,
        details -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    heartbeat (id) {
        id -> Integer,
        at -> BigInt,
    }
}

diesel::table! {
    roles (name) {
        name -> Text,
        description -> Text,
        permissions -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    apis (audience) {
        audience -> Text,
        name -> Text,
        permissions -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    totp_factors (user_id) {
        user_id -> Text,
        secret -> Binary,
        created_at -> BigInt,
    }
}

diesel::table! {
    totp_recovery_codes (user_id, code_hash) {
        user_id -> Text,
        code_hash -> Binary,
        created_at -> BigInt,
    }
}
