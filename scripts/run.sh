#!/usr/bin/env bash
# Serve the app: gunicorn in front, two Celery workers and beat behind. Ctrl-C stops them all.
# A worker or beat that dies is started again (the site keeps serving; jobs the dead worker
# was running are redelivered or swept back into the queue); gunicorn exiting stops all.
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
  echo "==> stopping gunicorn, the Celery workers and beat"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs a command again whenever it exits, 2 s later, saying so on the console. More than
# RESTART_BURST exits within a minute (a crash loop: broken settings, broker gone) slows the
# restarts to one per 30 s, so the log stays readable and the machine is not kept busy.
RESTART_BURST=${RESTART_BURST:-5}
supervise() {
  local name=$1 log=$2 child="" code now delay
  shift 2
  local exits=()
  # Background jobs of a script ignore SIGINT; stop() sends TERM, passed on to the child.
  trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null; wait "$child" 2>/dev/null; exit 0' TERM
  while true; do
    "$@" >>"$log" 2>&1 &
    child=$!
    code=0
    wait "$child" || code=$?
    # A Ctrl-C reaches the child directly too; stop()'s TERM follows within a moment, and
    # then this exits here without announcing a restart.
    sleep 0.5 &
    child=$!
    wait "$child" || true
    now=$(date +%s)
    exits+=("$now")
    local recent=()
    for t in "${exits[@]}"; do (( now - t < 60 )) && recent+=("$t"); done
    exits=("${recent[@]}")
    delay=2
    if (( ${#exits[@]} > RESTART_BURST )); then delay=30; fi
    echo "run: $name exited (code $code); restarting in $delay s (see $log)" >&2
    sleep "$delay" &
    child=$!
    wait "$child" || true
  done
}

# Two Celery workers, one per queue (config/settings.py): the light tasks (geocoding,
# sweeps, the heartbeat of /healthz), and the imports and exports, so that a long import
# never holds up the geocoding of new submissions.
# (From the settings alone: `manage.py shell` prints more than what it is asked.)
queues=$(DJANGO_SETTINGS_MODULE=config.settings .venv/bin/python -c \
  "from django.conf import settings as s; print(s.CELERY_TASK_DEFAULT_QUEUE, s.CELERY_JOBS_QUEUE)")
read -r light_queue jobs_queue <<<"$queues"
if [ -z "$light_queue" ] || [ -z "$jobs_queue" ]; then
  echo "run: could not read the Celery queue names from the settings (got: '$queues')" >&2
  exit 1
fi
supervise "worker" .run/worker.log \
  .venv/bin/celery -A config worker --loglevel=INFO --concurrency=1 -Q "$light_queue" -n "light@%h" &
pids+=($!)
supervise "jobs worker" .run/jobs-worker.log \
  .venv/bin/celery -A config worker --loglevel=INFO --concurrency=1 -Q "$jobs_queue" -n "jobs@%h" &
pids+=($!)
supervise "beat" .run/beat.log \
  .venv/bin/celery -A config beat --loglevel=INFO --schedule .run/celerybeat-schedule &
pids+=($!)
.venv/bin/gunicorn config.wsgi:application --bind "$HOST:$PORT" --workers "$WEB_WORKERS" \
  --worker-class gthread --threads 4 \
  --access-logfile - --error-logfile - --log-level warning --timeout 300 &
web=$!
pids+=("$web")

for _ in $(seq 1 40); do
  (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null && break
  sleep 0.5
done
cat <<MSG

  Protest tracker is running at http://$HOST:$PORT/
    admin:   http://$HOST:$PORT/admin/   (demo accounts: admin, moderator, contributor;
                                          password: \$DEMO_PASSWORD or "tracker-demo")
    API:     http://$HOST:$PORT/api/v1/      health: http://$HOST:$PORT/healthz
  Celery workers and beat logs: .run/worker.log, .run/jobs-worker.log, .run/beat.log
  (restarted if they die).
  Ctrl-C stops everything.

MSG
code=0
wait "$web" || code=$?
echo "run: gunicorn exited (code $code); stopping the worker and beat" >&2
exit 1
