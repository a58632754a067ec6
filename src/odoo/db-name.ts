/**
 * Odoo's own rule for database names (odoo/service/db.py DB_NAME_RE). A module of its own, without
 * dependencies: the CLI checks names before it connects to anything.
 */
export const ODOO_DB_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
