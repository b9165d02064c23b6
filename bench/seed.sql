-- Bulk data for the benchmark, loaded by bench/run.sh with psql after `alembic upgrade head`
-- and after the benchmark user was created with `python -m app create-user`.
--
-- psql variables:
--   others       how many other users to create (0 for the near-empty variant)
--   per_user     jobs per other user
--   bench_email  the benchmark user's email (must exist already)
--   bench_jobs   jobs for the benchmark user
--
-- Only the documented columns of `users` and `jobs` are used. Every job row is inserted in one
-- statement, ordered by created_at, so job ids grow with time and the benchmark user's jobs
-- are scattered through the table the way they would be after a year of real traffic.

\set ON_ERROR_STOP on

BEGIN;

-- Repeatable pseudo-random data from one run to the next.
SELECT setseed(0.4242);

INSERT INTO users (email, full_name, hashed_password, is_active, is_admin, token_version,
                   created_at, updated_at)
SELECT format('bench-other-%s@example.com', g),
       format('Other user %s', g),
       '!seeded-by-bench-no-login',
       true, false, 0,
       now() - interval '400 days',
       now() - interval '400 days'
FROM generate_series(1, :others) AS g;

INSERT INTO jobs (user_id, job_name, job_type, status, parameters, created_at, updated_at)
SELECT user_id, job_name, job_type, status, parameters, created_at,
       least(now(), created_at + update_delay)
FROM (
    -- The other users: random times over the past year, mostly finished jobs.
    SELECT user_id,
           format('job %s-%s', user_id, n) AS job_name,
           (ARRAY['report', 'export', 'import', 'sync', 'cleanup'])[1 + floor(r_type * 5)::int]
               AS job_type,
           CASE
               WHEN r_status < 0.15 THEN 'pending'
               WHEN r_status < 0.22 THEN 'running'
               WHEN r_status < 0.82 THEN 'completed'
               WHEN r_status < 0.94 THEN 'failed'
               ELSE 'cancelled'
           END AS status,
           CASE WHEN r_params < 0.5 THEN jsonb_build_object('day', n, 'source', 'seed') END
               AS parameters,
           now() - r_time * interval '365 days' AS created_at,
           r_update * interval '2 hours' AS update_delay
    FROM (
        SELECT u.user_id, n, random() AS r_type, random() AS r_status, random() AS r_params,
               random() AS r_time, random() AS r_update
        FROM users AS u
        CROSS JOIN generate_series(1, :per_user) AS n
        WHERE u.email LIKE 'bench-other-%@example.com'
    ) AS drawn

    UNION ALL

    -- The benchmark user: the same 50 rows (up to their timestamps' base) in every database,
    -- one about every week of the past year, ten in each status.
    SELECT b.user_id,
           format('bench job %s', n),
           (ARRAY['report', 'export', 'import', 'sync'])[1 + n % 4],
           (ARRAY['pending', 'running', 'completed', 'failed', 'cancelled'])[1 + n % 5],
           jsonb_build_object('n', n, 'source', 'bench'),
           date_trunc('day', now())
               - make_interval(days => (n - 1) * 7, hours => (n * 5) % 24, mins => (n * 17) % 60,
                               secs => ((n * 7919) % 60000) / 1000.0 + n * 0.000137),
           make_interval(mins => n % 30)
    FROM (SELECT user_id FROM users WHERE email = :'bench_email') AS b
    CROSS JOIN generate_series(1, :bench_jobs) AS n
) AS all_jobs
ORDER BY created_at;

COMMIT;
