'use client';

import { useCallback, useEffect, useRef, useState } from 'react';
import { jobsService } from './jobsService';
import { MAX_PAGE_SIZE, MAX_PROGRESS_ROWS, PAGE_SIZE, POLL_INTERVAL_MS } from './config';

function isVisible() {
  return typeof document === 'undefined' || document.visibilityState === 'visible';
}

/**
 * The shown jobs (newest first, `PAGE_SIZE` more per "Load more"), their
 * totals, and the progress of running ones, kept current while the tab is
 * visible.
 *
 * How it stays current: every POLL_INTERVAL_MS the list (every shown row in one
 * request) and the totals are asked for again with If-None-Match, so an
 * unchanged answer is a 304 that changes nothing. The list carries no
 * progress, so the detail of each shown running row (up to MAX_PROGRESS_ROWS)
 * is fetched on every refresh.
 *
 * `applyJob` and `applyStats` are the two ways a change lands in the view; a
 * pushed feed (Server-Sent Events on /api/users/jobs/events) would call them
 * from its events and fall back to this polling when the stream fails.
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
        const progress = await fetchProgress(jobs);
        if (requestId !== requestIdRef.current) return;

        if (!list.notModified) {
          let next = { jobs: list.jobs, total: list.total, nextCursor: list.nextCursor };
          // A full page leaves rows out at its end: those shown before (new jobs pushed them
          // down, or more are shown than one request may ask for) stay, and the next refresh
          // asks for them too.
          if (current && list.nextCursor && list.jobs.length === wanted) {
            const oldest = list.jobs[list.jobs.length - 1].id;
            const tail = current.jobs.filter((job) => job.id < oldest);
            next = { ...next, jobs: [...list.jobs, ...tail], nextCursor: current.nextCursor };
          }
          putView(next);
        }
        if (!totals.notModified) setStats(totals.stats);
        etagsRef.current = {
          list: list.etag ?? etagsRef.current.list,
          stats: totals.etag ?? etagsRef.current.stats,
        };
        setDetails(progress);
        failedRef.current = false;
        setError(null);
        setTick((n) => n + 1);
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
    inFlightRef.current = true;
    setLoadingMore(true);
    try {
      const page = await jobsService.getUserJobs({
        status,
        limit: PAGE_SIZE,
        cursor: current.nextCursor,
      });
      if (requestId !== requestIdRef.current) return;
      const seen = new Set(current.jobs.map((job) => job.id));
      putView({
        jobs: [...current.jobs, ...page.jobs.filter((job) => !seen.has(job.id))],
        total: page.total,
        nextCursor: page.nextCursor,
      });
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

  /** A job as the API now has it (after a cancel, or from a pushed event): its row changes in place. */
  const applyJob = useCallback(
    (job) => {
      const current = viewRef.current;
      if (!current) return;
      putView({
        ...current,
        jobs: current.jobs.map((row) => (row.id === job.id ? { ...row, ...job } : row)),
      });
      if (job.progress !== undefined) setDetails((old) => ({ ...old, [job.id]: job }));
    },
    [putView],
  );

  const applyStats = useCallback((next) => setStats(next), []);

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

  // Polling while the tab is visible; a tab that comes back refreshes at once.
  useEffect(() => {
    if (!enabled) return undefined;
    const poll = () => {
      if (isVisible() && !inFlightRef.current && !failedRef.current && viewRef.current) {
        refresh();
      }
    };
    const timer = setInterval(poll, POLL_INTERVAL_MS);
    document.addEventListener('visibilitychange', poll);
    return () => {
      clearInterval(timer);
      document.removeEventListener('visibilitychange', poll);
    };
  }, [enabled, refresh]);

  return {
    view,
    stats: error ? null : stats, // totals from before an error are not shown as current
    details,
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
