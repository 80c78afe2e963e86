-- One database role per service, owning that service's schemas and nothing else (docs/security.md,
-- "The database owner"). Run as a superuser in the application database: CloudNativePG runs it when
-- it creates the cluster (postgres.yaml, postInitApplicationSQLRefs, from the ConfigMap
-- modelyard-pg-roles that kustomization.yaml generates from this file); on a cluster created before,
-- run it once by hand (README.md, "Database roles"). It is idempotent, and it hands over schemas and
-- objects an earlier release created as the database owner `modelyard`.
--
-- The roles are created here without LOGIN, because CloudNativePG creates its managed roles only
-- after bootstrap, when this has run; the Cluster's spec.managed.roles then gives each one LOGIN and
-- the password of its secret (postgres.yaml). tests/deploy reads the table below and checks it
-- against the schema settings of each service; tests/integration runs this file on PostgreSQL.
DO $roles$
DECLARE
    -- schema, owning role: every schema a service creates (its *_schema settings' defaults).
    owned CONSTANT text[] := ARRAY[
        ['dataset',              'modelyard_dataset'],
        ['dataset_views',        'modelyard_dataset'],
        ['job',                  'modelyard_job'],
        ['job_views',            'modelyard_job'],
        ['job_live',             'modelyard_job'],
        ['job_reactions',        'modelyard_job'],
        ['trainer',              'modelyard_trainer'],
        ['registry',             'modelyard_registry'],
        ['registry_views',       'modelyard_registry'],
        ['registry_reactions',   'modelyard_registry'],
        ['deploy',               'modelyard_deploy'],
        ['deploy_views',         'modelyard_deploy'],
        ['deploy_reactions',     'modelyard_deploy'],
        ['deploy_live',          'modelyard_deploy']
    ];
    service_role text;
    schema_name text;
    object record;
BEGIN
    FOR service_role IN SELECT DISTINCT owned[i][2] FROM generate_subscripts(owned, 1) AS i LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = service_role) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', service_role);
        END IF;
        -- No TEMPORARY. CREATE on the database only because `CREATE SCHEMA IF NOT EXISTS`, which
        -- every service runs at start, checks it even when the schema exists: a role can create new
        -- schemas of its own, never use or alter another role's.
        EXECUTE format('GRANT CONNECT, CREATE ON DATABASE %I TO %I', current_database(), service_role);
        -- Unqualified names never resolve into a schema another role could create (such as one
        -- named after this role, "$user"): the services qualify every name with their schema.
        EXECUTE format('ALTER ROLE %I SET search_path = pg_catalog', service_role);
    END LOOP;
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    REVOKE CREATE ON SCHEMA public FROM PUBLIC;

    FOR i IN 1 .. array_length(owned, 1) LOOP
        schema_name := owned[i][1];
        service_role := owned[i][2];
        EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', schema_name, service_role);
        EXECUTE format('ALTER SCHEMA %I OWNER TO %I', schema_name, service_role);
        EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', schema_name);
        -- What an earlier release created in it as another role: tables (their indexes and row types
        -- follow), sequences, views, functions.
        FOR object IN
            SELECT c.oid::regclass AS name FROM pg_catalog.pg_class c
            WHERE c.relnamespace = schema_name::regnamespace AND c.relkind IN ('r', 'p', 'S', 'v')
              AND c.relowner <> service_role::regrole
        LOOP
            EXECUTE format('ALTER TABLE %s OWNER TO %I', object.name, service_role);
        END LOOP;
        FOR object IN
            SELECT p.oid::regprocedure AS name FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = schema_name::regnamespace AND p.proowner <> service_role::regrole
        LOOP
            EXECUTE format('ALTER ROUTINE %s OWNER TO %I', object.name, service_role);
        END LOOP;
    END LOOP;
END
$roles$;
