'use client';

import { useCallback, useEffect, useState } from 'react';
import { useRouter } from 'next/navigation';
import { useAuth } from '@/context/AuthContext';
import { jobsService } from '@/lib/jobsService';
import { JOB_STATUSES } from '@/lib/config';
import { useJobFeed } from '@/lib/useJobFeed';
import JobsTable from './JobsTable';
import JobDetailPanel from './JobDetailPanel';
import SubmitJobForm from './SubmitJobForm';

function sessionErrorMessage(err) {
  return err.message || 'Could not check your session';
}

const TOTALS = [
  ['Total', 'total'],
  ...JOB_STATUSES.map((status) => [status[0].toUpperCase() + status.slice(1), status]),
];

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

  const [statusFilter, setStatusFilter] = useState('');
  const [selectedId, setSelectedId] = useState(null);
  // A failed action's message. Background refreshes leave it; the next action
  // of the user's (another cancel, a submit, Retry) clears it.
  const [actionError, setActionError] = useState(null);
  const [cancellingId, setCancellingId] = useState(null);

  const feed = useJobFeed({
    enabled: Boolean(user),
    status: statusFilter || undefined,
    onUnauthorized: clearSession,
  });

  // A failed session check stays this page's error until jobs load: while a
  // retry's first load is on its way, nothing may look current.
  const [sessionFailure, setSessionFailure] = useState(null);
  useEffect(() => {
    if (sessionError) setSessionFailure(sessionErrorMessage(sessionError));
  }, [sessionError]);
  useEffect(() => {
    if (feed.tick > 0) setSessionFailure(null);
  }, [feed.tick]);

  // Signed out (the API answered 401): go to the login page. A failed session
  // check (API unreachable, 5xx) is not "signed out": stay and show the error.
  useEffect(() => {
    if (!authLoading && !user && !sessionError) {
      router.replace('/login');
    }
  }, [authLoading, user, sessionError, router]);

  // Without a user the session itself is unknown: re-check it first. Once it
  // is back, the feed loads jobs and totals.
  function handleRetry() {
    setActionError(null);
    if (user) {
      feed.refresh({ force: true });
    } else {
      retrySession();
    }
  }

  async function handleCancel(id) {
    setActionError(null);
    setCancellingId(id);
    try {
      feed.applyJob(await jobsService.cancelJob(id));
    } catch (err) {
      if (err.status === 401) {
        clearSession();
        return;
      }
      setActionError(`Could not cancel job ${id}: ${err.message}`);
      if (err.status === 409 || err.status === 404) {
        // The job moved on meanwhile: show the row as it is now.
        try {
          feed.applyJob(await jobsService.getJob(id));
        } catch {
          // the refresh below tells the rest
        }
      }
    } finally {
      setCancellingId(null);
    }
    feed.refresh({ force: true });
  }

  const handleSubmitted = useCallback(() => {
    setActionError(null);
    feed.refresh({ force: true });
  }, [feed.refresh]); // eslint-disable-line react-hooks/exhaustive-deps

  async function handleLogout() {
    await logout();
    router.replace('/login');
  }

  if (authLoading || (!user && !sessionError)) {
    return <p className="page-message">Loading…</p>;
  }

  // Before the effect above has copied it, a session error is shown directly.
  const shownError =
    feed.error ?? sessionFailure ?? (sessionError ? sessionErrorMessage(sessionError) : null);
  const retrying = feed.loading || checkingSession;
  const stats = shownError ? null : feed.stats;
  const view = feed.view;
  const selectedRow = view && selectedId !== null ? view.jobs.find((j) => j.id === selectedId) : null;

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
        {TOTALS.map(([label, key]) => (
          <div key={key} className={`card stat-card stat-${key}`}>
            <span className="stat-label">{label}</span>
            <span className="stat-value" data-testid={`stat-${key}`}>
              {stats?.[key] ?? '–'}
            </span>
          </div>
        ))}
      </section>

      {user && <SubmitJobForm onSubmitted={handleSubmitted} onUnauthorized={clearSession} />}

      <section className="card">
        <div className="section-header">
          <h2>Jobs</h2>
          <span
            className={feed.live ? 'feed-mode live' : 'feed-mode'}
            data-testid="feed-mode"
            title={
              feed.live
                ? 'Changes arrive as they happen (event stream)'
                : 'The event stream is not connected: asking for changes every few seconds'
            }
          >
            {feed.live ? 'Live' : 'Polling'}
          </span>
          <label className="filter">
            Status
            <select
              data-testid="status-filter"
              value={statusFilter}
              onChange={(e) => {
                setSelectedId(null);
                setStatusFilter(e.target.value);
              }}
            >
              <option value="">All</option>
              {JOB_STATUSES.map((status) => (
                <option key={status} value={status}>
                  {status}
                </option>
              ))}
            </select>
          </label>
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
        ) : view === null ? (
          <p className="muted" data-testid="jobs-loading">
            Loading jobs…
          </p>
        ) : view.jobs.length === 0 ? (
          <p className="muted" data-testid="jobs-empty">
            {statusFilter ? `No ${statusFilter} jobs.` : 'No jobs yet. Submit one above.'}
          </p>
        ) : (
          <>
            <JobsTable
              jobs={view.jobs}
              details={feed.details}
              cancellingId={cancellingId}
              selectedId={selectedId}
              onCancel={handleCancel}
              onSelect={setSelectedId}
            />
            <div className="list-footer">
              <span className="muted" data-testid="jobs-count">
                Showing {view.jobs.length} of {view.total}
              </span>
              {view.nextCursor && (
                <button
                  type="button"
                  className="button"
                  data-testid="load-more"
                  disabled={feed.loadingMore}
                  onClick={feed.loadMore}
                >
                  {feed.loadingMore ? 'Loading…' : 'Load more'}
                </button>
              )}
            </div>
          </>
        )}
      </section>

      {selectedRow && !shownError && (
        <JobDetailPanel
          row={selectedRow}
          progress={feed.details[selectedRow.id]?.progress}
          tick={feed.tick}
          onClose={() => setSelectedId(null)}
          onUnauthorized={clearSession}
        />
      )}
    </main>
  );
}
