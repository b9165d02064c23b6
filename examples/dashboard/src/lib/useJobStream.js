'use client';

import { useEffect, useRef, useState } from 'react';
import { API_BASE_URL, API_ENDPOINTS, STREAM_RETRY_MAX_MS, STREAM_RETRY_MS } from './config';

export function isVisible() {
  return typeof document === 'undefined' || document.visibilityState === 'visible';
}

/** Whether the tab is visible, kept current. */
function usePageVisible() {
  const [visible, setVisible] = useState(isVisible);
  useEffect(() => {
    const update = () => setVisible(isVisible());
    document.addEventListener('visibilitychange', update);
    return () => document.removeEventListener('visibilitychange', update);
  }, []);
  return visible;
}

/**
 * The user's job events (Server-Sent Events on GET /api/users/jobs/events), listened to while
 * `enabled` and the tab is visible. `handlers` are {onOpen, onJob, onStats, onResync}; `onOpen`
 * may return a promise (a catch-up refresh).
 *
 * Returns `live`: the stream is open and `onOpen` has settled, so what is shown is current and
 * stays so through the events.
 *
 * A dropped connection is re-established by the browser, which sends Last-Event-ID so that the
 * API replays what was missed or answers `resync`. An answer other than 200 (401 once the token
 * is gone, 429 with too many streams open, a 5xx) closes the EventSource for good: a new one is
 * tried after STREAM_RETRY_MS, doubling up to STREAM_RETRY_MAX_MS while they keep failing.
 */
export function useJobStream(enabled, handlers) {
  const [live, setLive] = useState(false);
  const visible = usePageVisible();
  const handlersRef = useRef(handlers);
  handlersRef.current = handlers;

  useEffect(() => {
    if (!enabled || !visible || typeof EventSource === 'undefined') return undefined;
    let source = null;
    let retryTimer = null;
    let delay = STREAM_RETRY_MS;

    const listen = (target, type, handler) =>
      target.addEventListener(type, (event) => {
        let data;
        try {
          data = JSON.parse(event.data);
        } catch {
          return; // not an event of the documented shape
        }
        handlersRef.current[handler]?.(data);
      });

    function connect() {
      const opened = new EventSource(`${API_BASE_URL}${API_ENDPOINTS.JOB_EVENTS}`, {
        withCredentials: true, // the HTTP-only login cookie authenticates the stream
      });
      source = opened;
      opened.addEventListener('open', async () => {
        delay = STREAM_RETRY_MS;
        await handlersRef.current.onOpen?.();
        if (source === opened && opened.readyState === EventSource.OPEN) setLive(true);
      });
      listen(opened, 'job', 'onJob');
      listen(opened, 'stats', 'onStats');
      listen(opened, 'resync', 'onResync');
      opened.addEventListener('error', () => {
        setLive(false);
        if (opened.readyState !== EventSource.CLOSED) return; // the browser reconnects itself
        retryTimer = setTimeout(connect, delay);
        delay = Math.min(delay * 2, STREAM_RETRY_MAX_MS);
      });
    }

    connect();
    return () => {
      clearTimeout(retryTimer);
      source.close();
      source = null;
      setLive(false);
    };
  }, [enabled, visible]);

  return live;
}
