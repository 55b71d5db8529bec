-- Restores a tenant orders for a computer under a policy, carried out by that computer's
-- agent on its next cycle (issue 21). Keep in step with ../postgres/0008_restores.sql.
CREATE TABLE restore_orders (
    id INTEGER PRIMARY KEY,
    subtenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    tenant_id INTEGER NOT NULL,
    point TEXT NOT NULL,
    paths TEXT NOT NULL,
    destination TEXT NOT NULL,
    conflict TEXT NOT NULL,
    state TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);

CREATE INDEX restore_orders_by_subtenant ON restore_orders (subtenant_id, state);
