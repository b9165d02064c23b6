'use client';

import { useEffect, useRef, useState } from 'react';
import { jobsService } from '@/lib/jobsService';
import { formatDate, formatDuration } from '@/lib/format';
import { ProgressBar } from './JobsTable';

function Json({ value, testId }) {
  if (value === null || value === undefined) {
    return (
      <span className="muted" data-testid={testId}>
        none
      </span>
    );
  }
  return (
    <pre className="json" data-testid={testId}>
      {JSON.stringify(value, null, 2)}
    </pre>
  );
}

/**
 * Everything the API knows of one job. It is fetched again whenever the row
 * changes, and while the job runs whenever its progress moves: with each job
 * event (`progress`), or on every refresh (`tick`) when the dashboard polls.
 */
export default function JobDetailPanel({ row, progress, tick, onClose, onUnauthorized }) {
  const [job, setJob] = useState(null);
  const [error, setError] = useState(null);
  const running = row.status === 'running';
  const panelRef = useRef(null);

  // On a phone the panel is below the list: bring it into view when a job is picked.
  useEffect(() => {
    panelRef.current?.scrollIntoView?.({ block: 'nearest' });
  }, [row.id]);

  useEffect(() => {
    let current = true;
    jobsService
      .getJob(row.id)
      .then((detail) => {
        if (!current) return;
        setJob(detail);
        setError(null);
      })
      .catch((err) => {
        if (!current) return;
        if (err.status === 401) onUnauthorized();
        else setError(err.message || 'Could not load the job');
      });
    return () => {
      current = false;
    };
    // Each refresh (tick) or progress event while running; otherwise only when the row changes.
  }, [
    row.id,
    row.status,
    row.updated_at,
    running ? progress : 0,
    running ? tick : 0,
    onUnauthorized,
  ]);

  const shown = job && job.id === row.id ? job : null;

  return (
    <section ref={panelRef} className="card detail" data-testid="job-detail" aria-label={`Job ${row.id}`}>
      <div className="section-header">
        <h2>
          Job #{row.id}: <span data-testid="detail-name">{row.name}</span>
        </h2>
        <button type="button" className="button small" data-testid="detail-close" onClick={onClose}>
          Close
        </button>
      </div>
      {error && (
        <p className="error-text" role="alert">
          {error}
        </p>
      )}
      {!shown ? (
        !error && <p className="muted">Loading…</p>
      ) : (
        <dl className="detail-grid">
          <dt>Status</dt>
          <dd>
            <span className={`status status-${shown.status}`} data-testid="detail-status">
              {shown.status}
            </span>
            {shown.status === 'running' && <ProgressBar detail={shown} />}
          </dd>
          <dt>Type</dt>
          <dd>{shown.type}</dd>
          <dt>Attempts</dt>
          <dd data-testid="detail-attempts">{shown.attempts}</dd>
          <dt>Created</dt>
          <dd>{formatDate(shown.created_at)}</dd>
          <dt>Started</dt>
          <dd data-testid="detail-started">{formatDate(shown.started_at)}</dd>
          <dt>Finished</dt>
          <dd data-testid="detail-finished">{formatDate(shown.finished_at)}</dd>
          <dt>Ran for</dt>
          <dd>{formatDuration(shown.started_at, shown.finished_at)}</dd>
          <dt>Parameters</dt>
          <dd>
            <Json value={shown.parameters} testId="detail-parameters" />
          </dd>
          <dt>Result</dt>
          <dd>
            <Json value={shown.result} testId="detail-result" />
          </dd>
          <dt>Error</dt>
          <dd data-testid="detail-error" className={shown.error ? 'error-text' : 'muted'}>
            {shown.error || 'none'}
          </dd>
        </dl>
      )}
    </section>
  );
}
