# Sourced by the scripts: values from .env count as if exported (the app reads the same
# file), without overriding what the environment already sets.
if [ -f .env ]; then
  while IFS='=' read -r key value; do
    case "$key" in ''|\#*) continue ;; esac
    [ -z "${!key:-}" ] && export "$key=$value"
  done < .env
fi

# keeps the status of a sourced file 0 whatever the last line of .env did
true
