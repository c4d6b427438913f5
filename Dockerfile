# Slim, non-root image for a read-only root filesystem.  The build needs no network: it installs
# wheels built on the host (HTTPS from inside a build container may not trust the host's CA store).
#   python3 -m pip wheel --wheel-dir wheels .       # the project and all its dependencies
#   podman build -t ai-signals-exporter .            # or docker build
# The wheels must match the image's Python (CPython 3.11, x86_64/aarch64 glibc).
# tests/image/ builds this file on a local Debian bookworm base (mmdebstrap) with
# --build-arg BASE_IMAGE=..., since no registry is reachable there.
ARG BASE_IMAGE=docker.io/library/python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

FROM ${BASE_IMAGE} AS build
COPY wheels/ /wheels/
# A virtual environment works the same on python:3.11-slim (/usr/local) and Debian's python3.
RUN python3 -m venv /opt/ai-signals-exporter \
 && /opt/ai-signals-exporter/bin/pip install --no-index --find-links=/wheels --no-compile \
      --disable-pip-version-check --no-cache-dir ai-signals-exporter \
 && /opt/ai-signals-exporter/bin/pip uninstall --yes --disable-pip-version-check pip setuptools \
 && /opt/ai-signals-exporter/bin/python -m compileall -q /opt/ai-signals-exporter/lib \
 && /opt/ai-signals-exporter/bin/ai-signals-exporter --version

FROM ${BASE_IMAGE}
# The uid/gid deploy/ runs as (runAsUser/runAsGroup/fsGroup), with entries of their own in
# /etc/passwd and /etc/group so tools and logs show a name.
RUN groupadd --system --gid 65532 exporter \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin exporter
COPY --from=build /opt/ai-signals-exporter /opt/ai-signals-exporter
# No writes at run time: bytecode is compiled at build time, nothing needs a temp file to serve.
ENV PATH=/opt/ai-signals-exporter/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 65532:65532
EXPOSE 9842
ENTRYPOINT ["ai-signals-exporter"]
CMD ["--config.file=/etc/ai-signals-exporter/config.yaml"]
