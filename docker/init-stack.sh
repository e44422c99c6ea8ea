#!/usr/bin/env bash
# One-off initialisation of the compose stack (the airflow-init service): the metadata database, the admin
# password, and the container and bucket the stack's datastores point at (Azurite and moto start empty).
set -euo pipefail

airflow db migrate

password_file="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:?}"
if [ ! -s "$password_file" ]; then
  printf '{"admin": "%s"}\n' "${MLPIPE_ADMIN_PASSWORD:-admin}" > "$password_file"
fi

python /opt/mlpipe/init_datastores.py mlpipe_default mlpipe_s3
