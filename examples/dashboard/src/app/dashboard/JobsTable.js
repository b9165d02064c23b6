'use client';

import { CANCELLABLE_STATUSES } from '@/lib/config';
import { formatDate } from '@/lib/format';

/** A running job's progress: a bar with the percentage when it is known, a moving one when not. */
export function ProgressBar({ detail }) {
  const known = detail && typeof detail.progress === 'number';
  const percent = known ? Math.max(0, Math.min(100, Math.round(detail.progress))) : null;
  return (
    <div className="progress" data-testid="job-progress">
      <div
        className={known ? 'progress-track' : 'progress-track indeterminate'}
        role="progressbar"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={known ? percent : undefined}
        aria-label="Progress"
      >
        <div className="progress-fill" style={known ? { width: `${percent}%` } : undefined} />
      </div>
      {known && (
        <span className="progress-text" data-testid="job-progress-text">
          {percent}%{detail.progress_message ? ` · ${detail.progress_message}` : ''}
        </span>
      )}
    </div>
  );
}

/**
 * The jobs as a table; under 640 px wide each row becomes a card (globals.css)
 * whose cells carry their own labels, so status and actions stay on screen.
 */
export default function JobsTable({ jobs, details, cancellingId, selectedId, onCancel, onSelect }) {
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
            <tr
              key={job.id}
              data-testid="job-row"
              data-job-id={job.id}
              className={selectedId === job.id ? 'selected' : undefined}
            >
              <td data-label="ID" className="job-id">
                {job.id}
              </td>
              <td data-label="Name" className="job-name" data-testid="job-name">
                {job.name}
              </td>
              <td data-label="Type">{job.type}</td>
              <td data-label="Status" className="job-status-cell">
                <span className={`status status-${job.status}`} data-testid="job-status">
                  {job.status}
                </span>
                {job.status === 'running' && <ProgressBar detail={details[job.id]} />}
              </td>
              <td data-label="Created">
                <time dateTime={job.created_at}>{formatDate(job.created_at)}</time>
              </td>
              <td data-label="Actions">
                <div className="actions">
                  <button
                    type="button"
                    className="button small"
                    data-testid="job-details"
                    aria-expanded={selectedId === job.id}
                    onClick={() => onSelect(selectedId === job.id ? null : job.id)}
                  >
                    Details
                  </button>
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
                </div>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
