FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
RUN useradd --create-home --uid 10001 keyward

COPY pyproject.toml README.md ./
COPY keyward keyward
COPY base base
COPY dashboard dashboard
COPY security security
COPY clients clients
COPY tokens tokens
COPY audit audit
RUN pip install .
COPY . .
# collectstatic needs settings that pass the production checks; these values never run.
RUN DEBUG=0 SECRET_KEY=build KEYWARD_SECRET_PEPPER=build KEYWARD_ISSUER=https://build \
    DATABASE_URL=sqlite:////tmp/build.sqlite3 REDIS_URL=redis://build:6379/0 ALLOWED_HOSTS=build \
    python manage.py collectstatic --noinput

USER keyward
EXPOSE 8000
CMD ["bin/serve"]
