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

export default function DashboardPage() {
  const { user, loading: authLoading, logout, clearSession } = useAuth();
  const router = useRouter();

  const [jobs, setJobs] = useState(null); // null until the first successful load
  const [stats, setStats] = useState(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState(null);
  const [actionError, setActionError] = useState(null);
  const [cancellingId, setCancellingId] = useState(null);

  // Only the newest request may update state, so overlapping refreshes
  // (retry, submit, cancel) never show stale data.
  const requestIdRef = useRef(0);

  // Not signed in: go to the login page.
  useEffect(() => {
    if (!authLoading && !user) {
      router.replace('/login');
    }
  }, [authLoading, user, router]);

  const loadData = useCallback(async () => {
    const requestId = ++requestIdRef.current;
    setLoading(true);
    setError(null);
    try {
      const [jobList, jobStats] = await Promise.all([
        jobsService.getUserJobs(),
        jobsService.getStats(),
      ]);
      if (requestId !== requestIdRef.current) return;
      setJobs(jobList);
      setStats(jobStats);
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
  }, [clearSession]);

  useEffect(() => {
    if (user) {
      loadData();
    }
    return () => {
      requestIdRef.current += 1; // ignore answers that arrive after unmount or user change
    };
  }, [user, loadData]);

  async function handleCancel(id) {
    setActionError(null);
    setCancellingId(id);
    try {
      await jobsService.cancelJob(id);
    } catch (err) {
      if (err.status === 401) {
        clearSession();
        return;
      }
      setActionError(`Could not cancel job ${id}: ${err.message}`);
    } finally {
      setCancellingId(null);
    }
    loadData();
  }

  async function handleLogout() {
    await logout();
    router.replace('/login');
  }

  if (authLoading || !user) {
    return <p className="page-message">Loading…</p>;
  }

  return (
    <main className="dashboard">
      <header className="dashboard-header">
        <h1>My Jobs</h1>
        <div className="user-info">
          <span data-testid="user-email">{user.email}</span>
          <button type="button" className="button" data-testid="logout-button" onClick={handleLogout}>
            Log out
          </button>
        </div>
      </header>

      <section className="stats" aria-label="Job totals">
        <StatCard label="Total" value={stats?.total} testId="stat-total" />
        <StatCard label="Completed" value={stats?.completed} testId="stat-completed" />
        <StatCard label="Running" value={stats?.running} testId="stat-running" />
      </section>

      <SubmitJobForm onSubmitted={loadData} onUnauthorized={clearSession} />

      <section className="card">
        <div className="section-header">
          <h2>Jobs</h2>
          {loading && jobs !== null && (
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

        {error ? (
          <div className="error-box" role="alert" data-testid="jobs-error">
            <p>{error}</p>
            <button type="button" className="button" data-testid="retry-button" onClick={loadData}>
              Retry
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
