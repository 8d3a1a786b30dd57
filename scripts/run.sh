#!/usr/bin/env bash
# Serve the app: gunicorn in front, a Celery worker and beat behind. Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
WEB_WORKERS=${WEB_WORKERS:-3}

if (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; then
  echo "run: port $PORT on $HOST is already taken; stop what uses it or choose another: make run PORT=8001" >&2
  exit 1
fi

pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "==> stopping gunicorn, the Celery worker and beat"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

.venv/bin/celery -A tracker worker --loglevel=INFO --concurrency=2 >.run/worker.log 2>&1 &
pids+=($!)
.venv/bin/celery -A tracker beat --loglevel=INFO --schedule .run/celerybeat-schedule \
  >.run/beat.log 2>&1 &
pids+=($!)
.venv/bin/gunicorn tracker.wsgi:application --bind "$HOST:$PORT" --workers "$WEB_WORKERS" \
  --worker-class gthread --threads 4 \
  --access-logfile - --error-logfile - --log-level warning --timeout 300 &
pids+=($!)

for _ in $(seq 1 40); do
  (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null && break
  sleep 0.5
done
cat <<MSG

  Protest tracker is running at http://$HOST:$PORT/
    admin:   http://$HOST:$PORT/admin/   (demo accounts: admin, moderator, contributor;
                                          password: \$DEMO_PASSWORD or "tracker-demo")
    API:     http://$HOST:$PORT/api/v1/      health: http://$HOST:$PORT/healthz
  Celery worker and beat logs: .run/worker.log, .run/beat.log.  Ctrl-C stops everything.

MSG
wait -n "${pids[@]}"
echo "run: a process exited; see .run/worker.log, .run/beat.log and the output above" >&2
