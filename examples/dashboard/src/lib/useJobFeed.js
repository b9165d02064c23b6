'use client';

import { useCallback, useEffect, useRef, useState } from 'react';
import { jobsService, transformJob } from './jobsService';
import { isVisible, useJobStream } from './useJobStream';
import {
  MAX_PAGE_SIZE,
  MAX_PROGRESS_ROWS,
  PAGE_SIZE,
  POLL_INTERVAL_MS,
  SAFETY_REFRESH_MS,
} from './config';

/** Whether `a` was changed after `b` (both jobs as the API renders them). */
function changedAfter(a, b) {
  return Date.parse(a.updated_at) > Date.parse(b.updated_at);
}

/**
 * The view ({jobs, total, nextCursor}) with `job` as the API now has it. A shown row changes in
 * place, or leaves when it no longer has the filtered `status`. A job not shown joins when it
 * has that status and falls within the shown range (newer than the last shown row, or every row
 * is shown): a new job, or one that came to the filtered status.
 */
function withJob(view, job, status) {
  const matches = !status || job.status === status;
  const row = view.jobs.find((shown) => shown.id === job.id);
  if (row && changedAfter(row, job)) return view; // older than what is shown (a replayed event)
  if (row && matches) {
    const jobs = view.jobs.map((shown) => (shown === row ? { ...row, ...job } : shown));
    return { ...view, jobs };
  }
  if (row) {
    return { ...view, jobs: view.jobs.filter((shown) => shown !== row), total: view.total - 1 };
  }
  const last = view.jobs[view.jobs.length - 1];
  if (matches && (!view.nextCursor || !last || job.id > last.id)) {
    const jobs = [...view.jobs, job].sort((a, b) => b.id - a.id);
    return { ...view, jobs, total: view.total + 1 };
  }
  return view;
}

function withJobs(view, jobs, status) {
  return jobs.reduce((next, job) => withJob(next, job, status), view);
}

/**
 * The shown jobs (newest first, `PAGE_SIZE` more per "Load more"), their
 * totals, and the progress of running ones, kept current while the tab is
 * visible.
 *
 * How it stays current: the job events of GET /api/users/jobs/events
 * (useJobStream) change rows in place (`applyJob`) and replace the totals
 * (`applyStats`); `resync` reloads both. When the stream opens, the list is
 * asked for once, for what changed before it did. While the stream is up
 * (`live`), nothing is polled but a refresh every SAFETY_REFRESH_MS. Job
 * events that arrive while a request is on its way are applied again to its
 * answer, which may have been read before them.
 *
 * Without the stream (it failed, or is being tried again): every
 * POLL_INTERVAL_MS the list (every shown row in one request) and the totals
 * are asked for with If-None-Match, so an unchanged answer is a 304 that
 * changes nothing. The list carries no progress, so such a refresh also
 * fetches the detail of each shown running row (up to MAX_PROGRESS_ROWS).
 *
 * A failed refresh hides the rows and totals (they are no longer known to be
 * current) and stops polling until `refresh()` is called again (Retry).
 */
export function useJobFeed({ enabled, status, onUnauthorized }) {
  const [view, setView] = useState(null); // {jobs, total, nextCursor}; null until loaded
  const [stats, setStats] = useState(null);
  const [details, setDetails] = useState({}); // id -> the job's detail, for running rows
  const [error, setError] = useState(null);
  const [loading, setLoading] = useState(false);
  const [loadingMore, setLoadingMore] = useState(false);
  const [tick, setTick] = useState(0); // counts successful refreshes

  const requestIdRef = useRef(0);
  const etagsRef = useRef({ list: null, stats: null });
  const viewRef = useRef(null);
  const failedRef = useRef(false);
  const inFlightRef = useRef(false);
  const liveRef = useRef(false);
  const jobEventsRef = useRef([]); // job events since a request in flight was sent
  const statsEventsRef = useRef(0); // counts stats events: a refresh's older totals yield to them
  const unauthorizedRef = useRef(onUnauthorized);
  unauthorizedRef.current = onUnauthorized;

  const putView = useCallback((next) => {
    viewRef.current = next;
    setView(next);
  }, []);

  const fetchProgress = useCallback(async (jobs) => {
    const running = jobs.filter((job) => job.status === 'running').slice(0, MAX_PROGRESS_ROWS);
    if (running.length === 0) return {};
    const answers = await Promise.allSettled(running.map((job) => jobsService.getJob(job.id)));
    const found = {};
    answers.forEach((answer) => {
      if (answer.status === 'fulfilled') found[answer.value.id] = answer.value;
    });
    return found;
  }, []);

  /**
   * Ask for the shown rows and the totals. `force` drops the ETags (a full
   * answer even when nothing changed), as after an action of the user's.
   */
  const refresh = useCallback(
    async ({ force = false } = {}) => {
      const requestId = ++requestIdRef.current;
      const eventsBefore = jobEventsRef.current.length;
      const statsEvents = statsEventsRef.current;
      inFlightRef.current = true;
      setLoading(true);
      try {
        const current = viewRef.current;
        const shown = Math.max(current ? current.jobs.length : 0, PAGE_SIZE);
        const wanted = Math.min(shown, MAX_PAGE_SIZE);
        // The API's default page is PAGE_SIZE: the plain URL then, as any other client sends it.
        const limit = wanted > PAGE_SIZE ? wanted : undefined;
        const etags = force || failedRef.current ? { list: null, stats: null } : etagsRef.current;
        const [list, totals] = await Promise.all([
          jobsService.getUserJobs({ status, limit, etag: etags.list }),
          jobsService.getStats({ etag: etags.stats }),
        ]);
        const jobs = list.notModified ? current.jobs : list.jobs;
        // While live, the job events carry the progress.
        const progress = liveRef.current ? null : await fetchProgress(jobs);
        if (requestId !== requestIdRef.current) return;

        if (!list.notModified) {
          let next = { jobs: list.jobs, total: list.total, nextCursor: list.nextCursor };
          // A full page leaves rows out at its end: those shown before (new jobs pushed them
          // down, or more are shown than one request may ask for) stay, and the next refresh
          // asks for them too.
          const latest = viewRef.current;
          if (latest && list.nextCursor && list.jobs.length === wanted) {
            const oldest = list.jobs[list.jobs.length - 1].id;
            const tail = latest.jobs.filter((job) => job.id < oldest);
            next = { ...next, jobs: [...list.jobs, ...tail], nextCursor: latest.nextCursor };
          }
          putView(withJobs(next, jobEventsRef.current.slice(eventsBefore), status));
        }
        if (!totals.notModified && statsEvents === statsEventsRef.current) {
          setStats(totals.stats);
        }
        etagsRef.current = {
          list: list.etag ?? etagsRef.current.list,
          stats: totals.etag ?? etagsRef.current.stats,
        };
        if (progress) setDetails(progress);
        failedRef.current = false;
        setError(null);
        setTick((n) => n + 1);
        jobEventsRef.current = [];
      } catch (err) {
        if (requestId !== requestIdRef.current) return;
        if (err.status === 401) {
          unauthorizedRef.current?.(); // session expired or revoked
          return;
        }
        failedRef.current = true;
        setError(err.message || 'Failed to load jobs');
      } finally {
        if (requestId === requestIdRef.current) {
          inFlightRef.current = false;
          setLoading(false);
        }
      }
    },
    [status, fetchProgress, putView],
  );

  /** The next PAGE_SIZE rows after the shown ones. */
  const loadMore = useCallback(async () => {
    const current = viewRef.current;
    if (!current || !current.nextCursor) return;
    const requestId = ++requestIdRef.current; // an older refresh must not drop these rows
    const eventsBefore = jobEventsRef.current.length;
    inFlightRef.current = true;
    setLoadingMore(true);
    try {
      const page = await jobsService.getUserJobs({
        status,
        limit: PAGE_SIZE,
        cursor: current.nextCursor,
      });
      if (requestId !== requestIdRef.current) return;
      const latest = viewRef.current;
      const seen = new Set(latest.jobs.map((job) => job.id));
      const next = {
        jobs: [...latest.jobs, ...page.jobs.filter((job) => !seen.has(job.id))],
        total: page.total,
        nextCursor: page.nextCursor,
      };
      putView(withJobs(next, jobEventsRef.current.slice(eventsBefore), status));
      jobEventsRef.current = [];
      etagsRef.current = { ...etagsRef.current, list: null }; // the shown rows changed
      setError(null);
    } catch (err) {
      if (requestId !== requestIdRef.current) return;
      if (err.status === 401) {
        unauthorizedRef.current?.();
        return;
      }
      failedRef.current = true;
      setError(err.message || 'Failed to load more jobs');
    } finally {
      if (requestId === requestIdRef.current) {
        inFlightRef.current = false;
        setLoading(false);
      }
      setLoadingMore(false);
    }
  }, [status, putView]);

  /** A job as the API now has it (after a cancel, or from a job event): see `withJob`. */
  const applyJob = useCallback(
    (job) => {
      if (inFlightRef.current) jobEventsRef.current.push(job); // for the answer on its way
      const current = viewRef.current;
      if (current) putView(withJob(current, job, status));
      if (job.progress !== undefined) setDetails((old) => ({ ...old, [job.id]: job }));
    },
    [status, putView],
  );

  const applyStats = useCallback((next) => {
    statsEventsRef.current += 1;
    setStats(next);
  }, []);

  const live = useJobStream(enabled, {
    onOpen: () => refresh(), // what changed between the first load and the stream's start
    onJob: (data) => applyJob(transformJob(data)),
    onStats: applyStats,
    onResync: () => refresh({ force: true }),
  });
  liveRef.current = live;

  // A new filter (or user) starts over: no rows, no ETags, one page.
  useEffect(() => {
    if (!enabled) return undefined;
    etagsRef.current = { list: null, stats: null };
    failedRef.current = false;
    putView(null);
    setDetails({});
    refresh();
    return () => {
      requestIdRef.current += 1; // ignore answers that arrive after unmount or a new filter
    };
  }, [enabled, status, refresh, putView]);

  // Polling while the tab is visible, slowly while live; a tab that comes back refreshes at once.
  useEffect(() => {
    if (!enabled) return undefined;
    const poll = () => {
      if (isVisible() && !inFlightRef.current && !failedRef.current && viewRef.current) {
        refresh();
      }
    };
    const timer = setInterval(poll, live ? SAFETY_REFRESH_MS : POLL_INTERVAL_MS);
    document.addEventListener('visibilitychange', poll);
    return () => {
      clearInterval(timer);
      document.removeEventListener('visibilitychange', poll);
    };
  }, [enabled, refresh, live]);

  return {
    view,
    stats: error ? null : stats, // totals from before an error are not shown as current
    details,
    live,
    error,
    loading,
    loadingMore,
    tick,
    refresh,
    loadMore,
    applyJob,
    applyStats,
  };
}
