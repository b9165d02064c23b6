'use client';

import { useCallback, useEffect, useRef, useState } from 'react';
import { useRouter } from 'next/navigation';
import { useAuth } from '@/context/AuthContext';
import { jobsService } from '@/lib/jobsService';
import { CANCELLABLE_STATUSES } from '@/lib/config';

function formatDate(value) {
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value ?? '') : date.toLocaleString();
}

function sessionErrorMessage(err) {
  return err.message || 'Could not check your session';
}

export default function DashboardPage() {
  const {
    user,
    loading: authLoading,
    checking: checkingSession,
    sessionError,
    retrySession,
    logout,
    clearSession,
  } = useAuth();
  const router = useRouter();

  const [jobs, setJobs] = useState(null); // null until the first successful load
  const [stats, setStats] = useState(null);
  const [loading, setLoading] = useState(false);
  // Why the jobs could not be shown (a failed load or a failed session check).
  // Only a successful load clears it, so while a retry is in flight the error
  // stays on screen instead of old data that looks fresh.
  const [error, setError] = useState(null);
  const [actionError, setActionError] = useState(null);
  const [cancellingId, setCancellingId] = useState(null);

  // Only the newest request may update state, so overlapping refreshes
  // (retry, submit, cancel) never show stale data.
  const requestIdRef = useRef(0);

  // Signed out (the API answered 401): go to the login page. A failed session
  // check (API unreachable, 5xx) is not "signed out": stay and show the error.
  useEffect(() => {
    if (!authLoading && !user && !sessionError) {
      router.replace('/login');
    }
  }, [authLoading, user, sessionError, router]);

  // A failed session check is this page's error until the jobs load.
  useEffect(() => {
    if (sessionError) {
      setError(sessionErrorMessage(sessionError));
    }
  }, [sessionError]);

  // keepActionError: the refresh that follows a failed action must not hide
  // that action's error; any other successful refresh clears it.
  const loadData = useCallback(
    async ({ keepActionError = false } = {}) => {
      const requestId = ++requestIdRef.current;
      setLoading(true);
      try {
        const [jobList, jobStats] = await Promise.all([
          jobsService.getUserJobs(),
          jobsService.getStats(),
        ]);
        if (requestId !== requestIdRef.current) return;
        setJobs(jobList);
        setStats(jobStats);
        setError(null);
        if (!keepActionError) setActionError(null);
      } catch (err) {
        if (requestId !== requestIdRef.current) return;
        if (err.status === 401) {
          clearSession(); // session expired or revoked
          return;
        }
        setError(err.message || 'Failed to load jobs');
      } finally {
        if (requestId === requestIdRef.current) setLoading(false);
      }
    },
    [clearSession],
  );

  useEffect(() => {
    if (user) {
      loadData();
    }
    return () => {
      requestIdRef.current += 1; // ignore answers that arrive after unmount or user change
    };
  }, [user, loadData]);

  // Without a user the session itself is unknown: re-check it first. Once it
  // is back, the effect above loads jobs and totals.
  function handleRetry() {
    if (user) {
      loadData();
    } else {
      retrySession();
    }
  }

  async function handleCancel(id) {
    setActionError(null);
    setCancellingId(id);
    let failed = false;
    try {
      await jobsService.cancelJob(id);
    } catch (err) {
      if (err.status === 401) {
        clearSession();
        return;
      }
      setActionError(`Could not cancel job ${id}: ${err.message}`);
      failed = true;
    } finally {
      setCancellingId(null);
    }
    loadData({ keepActionError: failed });
  }

  async function handleLogout() {
    await logout();
    router.replace('/login');
  }

  if (authLoading || (!user && !sessionError)) {
    return <p className="page-message">Loading…</p>;
  }

  // Before the effect above has copied it, a session error is shown directly.
  const shownError = error ?? (sessionError ? sessionErrorMessage(sessionError) : null);
  const retrying = loading || checkingSession;
  const shownStats = shownError ? null : stats;

  return (
    <main className="dashboard">
      <header className="dashboard-header">
        <h1>My Jobs</h1>
        {user && (
          <div className="user-info">
            <span data-testid="user-email">{user.email}</span>
            <button type="button" className="button" data-testid="logout-button" onClick={handleLogout}>
              Log out
            </button>
          </div>
        )}
      </header>

      {/* Totals from before an error are not shown as if they were current. */}
      <section className="stats" aria-label="Job totals">
        <StatCard label="Total" value={shownStats?.total} testId="stat-total" />
        <StatCard label="Completed" value={shownStats?.completed} testId="stat-completed" />
        <StatCard label="Running" value={shownStats?.running} testId="stat-running" />
      </section>

      {user && <SubmitJobForm onSubmitted={loadData} onUnauthorized={clearSession} />}

      <section className="card">
        <div className="section-header">
          <h2>Jobs</h2>
          {loading && jobs !== null && !shownError && (
            <span className="muted" data-testid="jobs-loading">
              Refreshing…
            </span>
          )}
        </div>

        {actionError && (
          <p className="error-text" role="alert" data-testid="action-error">
            {actionError}
          </p>
        )}

        {shownError ? (
          <div className="error-box" role="alert" data-testid="jobs-error" aria-busy={retrying}>
            <p>{shownError}</p>
            <button
              type="button"
              className="button"
              data-testid="retry-button"
              disabled={retrying}
              onClick={handleRetry}
            >
              {retrying ? 'Retrying…' : 'Retry'}
            </button>
          </div>
        ) : jobs === null ? (
          <p className="muted" data-testid="jobs-loading">
            Loading jobs…
          </p>
        ) : jobs.length === 0 ? (
          <p className="muted" data-testid="jobs-empty">
            No jobs yet. Submit one above.
          </p>
        ) : (
          <JobsTable jobs={jobs} cancellingId={cancellingId} onCancel={handleCancel} />
        )}
      </section>
    </main>
  );
}

function StatCard({ label, value, testId }) {
  return (
    <div className="card stat-card">
      <span className="stat-label">{label}</span>
      <span className="stat-value" data-testid={testId}>
        {value ?? '–'}
      </span>
    </div>
  );
}

function JobsTable({ jobs, cancellingId, onCancel }) {
  return (
    <div className="table-wrapper">
      <table className="jobs-table" data-testid="jobs-table">
        <thead>
          <tr>
            <th scope="col">ID</th>
            <th scope="col">Name</th>
            <th scope="col">Type</th>
            <th scope="col">Status</th>
            <th scope="col">Created</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {jobs.map((job) => (
            <tr key={job.id} data-testid="job-row" data-job-id={job.id}>
              <td>{job.id}</td>
              <td className="job-name" data-testid="job-name">{job.name}</td>
              <td>{job.type}</td>
              <td data-testid="job-status">
                <span className={`status status-${job.status}`}>{job.status}</span>
              </td>
              <td>
                <time dateTime={job.created_at}>{formatDate(job.created_at)}</time>
              </td>
              <td>
                {CANCELLABLE_STATUSES.includes(job.status) && (
                  <button
                    type="button"
                    className="button small"
                    data-testid="cancel-job"
                    disabled={cancellingId === job.id}
                    onClick={() => onCancel(job.id)}
                  >
                    {cancellingId === job.id ? 'Cancelling…' : 'Cancel'}
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function SubmitJobForm({ onSubmitted, onUnauthorized }) {
  const [name, setName] = useState('');
  const [type, setType] = useState('');
  const [submitting, setSubmitting] = useState(false);
  const [error, setError] = useState(null);
  const [message, setMessage] = useState(null);

  async function handleSubmit(event) {
    event.preventDefault();
    setError(null);
    setMessage(null);
    setSubmitting(true);
    try {
      const job = await jobsService.submitJob({ name: name.trim(), type: type.trim() });
      setName('');
      setMessage(`Submitted job #${job.id} (${job.name})`);
      onSubmitted();
    } catch (err) {
      if (err.status === 401) {
        onUnauthorized();
        return;
      }
      setError(err.message || 'Could not submit the job');
    } finally {
      setSubmitting(false);
    }
  }

  return (
    <section className="card">
      <h2>Submit a job</h2>
      <form className="submit-form" onSubmit={handleSubmit}>
        <label>
          Name
          <input
            data-testid="job-name-input"
            value={name}
            maxLength={255}
            required
            onChange={(e) => setName(e.target.value)}
          />
        </label>
        <label>
          Type
          <input
            data-testid="job-type-input"
            value={type}
            maxLength={50}
            placeholder="e.g. simple"
            title="Lowercase letters, digits, '-' and '_'"
            required
            onChange={(e) => setType(e.target.value)}
          />
        </label>
        <button type="submit" className="button primary" data-testid="job-submit" disabled={submitting}>
          {submitting ? 'Submitting…' : 'Submit'}
        </button>
      </form>
      {error && (
        <p className="error-text" role="alert" data-testid="job-submit-error">
          {error}
        </p>
      )}
      {message && (
        <p className="success-text" data-testid="job-submit-success">
          {message}
        </p>
      )}
    </section>
  );
}
