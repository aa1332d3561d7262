//! Migration 4: The client registry in registration order: a sequence, since many clients are
//! registered within one millisecond. Clients registered before are numbered in the
//! order of their times.

pub const SQL: &str = "CREATE SEQUENCE {s}.nts_clients_seq;
    ALTER TABLE {s}.nts_clients ADD COLUMN seq BIGINT;
    UPDATE {s}.nts_clients c SET seq = o.n
    FROM (SELECT client_id, row_number() OVER (ORDER BY created_at, client_id) AS n
          FROM {s}.nts_clients) o
    WHERE c.client_id = o.client_id;
    SELECT setval('{s}.nts_clients_seq', (SELECT count(*) FROM {s}.nts_clients) + 1, false);
    ALTER TABLE {s}.nts_clients ALTER COLUMN seq SET DEFAULT nextval('{s}.nts_clients_seq'),
        ALTER COLUMN seq SET NOT NULL;
    ALTER SEQUENCE {s}.nts_clients_seq OWNED BY {s}.nts_clients.seq;
    CREATE INDEX nts_clients_by_seq ON {s}.nts_clients (seq);";
