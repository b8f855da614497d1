# Every target creates its own virtual environment on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-latest lock lint typecheck check emulator bench soak uniqueness fuzz clean web-sdk faults web-client-test

# The real IVS web broadcast SDK for the demo page (GET /demo), from the npm registry into a
# git-ignored folder, pinned by version and by the tarball's integrity hash. Only its browser
# bundle (self-contained UMD) is used, so the package's own dependencies are not installed.
WEB_SDK_VERSION   := 1.41.0
WEB_SDK_INTEGRITY := sha512-/RaBcdeBTBS8T4kVnNrHG/0jZFOeiJuglNDBtPlhLiKYw2kq7LOKNiL/aWYuKhHhBG6tBmHNK5AL04JFl7a+lw==
WEB_SDK_DIR       := .web-sdk
WEB_SDK_PACKAGE   := $(WEB_SDK_DIR)/node_modules/amazon-ivs-web-broadcast
WEB_SDK_BUNDLE    := $(WEB_SDK_PACKAGE)/dist/amazon-ivs-web-broadcast.js

web-sdk: $(WEB_SDK_BUNDLE)

$(WEB_SDK_BUNDLE):
	rm -rf $(WEB_SDK_DIR) && mkdir -p $(WEB_SDK_PACKAGE)
	cd $(WEB_SDK_DIR) && npm pack --silent amazon-ivs-web-broadcast@$(WEB_SDK_VERSION) >/dev/null
	test "sha512-$$(openssl dgst -sha512 -binary $(WEB_SDK_DIR)/amazon-ivs-web-broadcast-$(WEB_SDK_VERSION).tgz | base64 -w0)" = "$(WEB_SDK_INTEGRITY)" \
	  || { echo "amazon-ivs-web-broadcast $(WEB_SDK_VERSION): integrity mismatch" >&2; rm -rf $(WEB_SDK_DIR); exit 1; }
	tar -xzf $(WEB_SDK_DIR)/amazon-ivs-web-broadcast-$(WEB_SDK_VERSION).tgz -C $(WEB_SDK_PACKAGE) --strip-components=1
	rm $(WEB_SDK_DIR)/amazon-ivs-web-broadcast-$(WEB_SDK_VERSION).tgz
	touch $@

# The web client (clients/web, @ivs-token-service/web): its devDependencies exactly as
# package-lock.json pins them (`npm ci`), once per change of the lock (a stamp). Its tests
# (`npm test`: node --test) run against a real `serve --dev` of this checkout, which they
# start themselves with this venv's Python, from the repository's root.
WEB_CLIENT       := clients/web
WEB_CLIENT_STAMP := $(WEB_CLIENT)/node_modules/.installed

$(WEB_CLIENT_STAMP): $(WEB_CLIENT)/package.json $(WEB_CLIENT)/package-lock.json
	cd $(WEB_CLIENT) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

web-client-test: $(STAMP) $(WEB_CLIENT_STAMP)
	cd $(WEB_CLIENT) && TOKEN_SERVICE_COMMAND="$(abspath $(BIN))/python -m token_service" npm test

# Installs come from the lock (requirements/test.txt: every package pinned, with hashes),
# so what was tested is what is installed; then the package itself, editable, built by the
# locked hatchling. pip runs with -qq: the lock is all it installs, and errors still show.
LOCK := requirements/test.txt
PIP  := $(BIN)/python -m pip --disable-pip-version-check -qq

$(STAMP): $(LOCK) pyproject.toml emulator/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --require-hashes -r $(LOCK)
	$(PIP) install --no-deps --no-build-isolation -e .
	$(PIP) install --no-deps --no-build-isolation -e ./emulator
	touch $(STAMP)

# Regenerates requirements/*.txt from pyproject.toml (uv, pinned by the lock itself);
# tests/packaging/test_lock.py fails while they are out of date.
lock: $(STAMP)
	$(BIN)/python tools/lock.py compile

# The suite against the newest releases pyproject.toml's ranges allow, in a venv of its
# own (never the lock): how a new release of a dependency is caught before users get it.
LATEST_VENV := .venv-latest
test-latest: $(WEB_SDK_BUNDLE) $(WEB_CLIENT_STAMP)
	rm -rf $(LATEST_VENV)
	$(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip --disable-pip-version-check -qq install --upgrade pip
	$(LATEST_VENV)/bin/python -m pip --disable-pip-version-check -qq install --upgrade -e '.[test]' -e './emulator[test]'
	$(LATEST_VENV)/bin/python tools/lock.py newer
	$(LATEST_VENV)/bin/python -m pytest -n 2 --dist loadfile
	cd emulator && ../$(LATEST_VENV)/bin/python -m pytest -n 2 --dist loadfile

run: $(STAMP)
	@$(MAKE) --no-print-directory web-sdk || echo "(no IVS web SDK: the demo page works without its verdict)"
	$(BIN)/token-service serve --dev

emulator: $(STAMP)
	$(BIN)/ivs-realtime-emulator

lint: $(STAMP)
	$(BIN)/ruff check token_service tests bench tools emulator
	$(BIN)/ruff format --check token_service tests bench tools emulator
	$(BIN)/mypy
	$(BIN)/lint-imports

# The web client's packages come first: the Python suite checks its generated types and the
# demo's copy of it with them. Then the emulator's own suite (emulator/: a distribution of
# its own, with its own pytest configuration and `tests` package, so it runs from its
# folder), then the web client's tests.
test: lint $(WEB_SDK_BUNDLE) $(WEB_CLIENT_STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile
	cd emulator && ../$(BIN)/python -m pytest -n 2 --dist loadfile
	$(MAKE) --no-print-directory web-client-test

# Fault runs with real processes killed, frozen or failing, the long ones included
# (docs/reliability.md, "Faults"); `make test` runs Redis killed and SIGTERM under load.
FAULT_TESTS := tests/e2e/test_faults_redis.py tests/e2e/test_faults_ivs.py \
	tests/e2e/test_faults_jwks.py tests/e2e/test_faults_key_deleted.py \
	tests/e2e/test_shutdown_drain.py tests/integration/infra/test_redis_connection_faults.py \
	tests/integration/keys/test_ring_faults.py tests/integration/keys/test_reconcile.py \
	tests/security/test_connection_timeouts.py tests/security/test_readiness.py \
	tests/security/test_client_disconnects.py tests/security/test_ban_disconnects.py \
	tests/security/test_concurrent_participant_changes.py
faults: $(STAMP)
	TOKEN_SERVICE_FAULTS=1 $(BIN)/python -m pytest -n 2 --dist loadfile -rP $(FAULT_TESTS)

bench: $(STAMP)
	test ! -f bench/run.py || $(BIN)/python bench/run.py
	$(BIN)/python bench/ivs_latency.py

# A 5-minute soak at half the probed saturation rate: memory, descriptors and connections
# flat, no error (SOAK_ARGS="--seconds 60" for a shorter one). Appends to bench/results/soak.md.
soak: $(STAMP)
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

# A million tokens at saturation: no participant ID issued twice, one mapping record each.
# Appends to bench/results/uniqueness.md.
uniqueness: $(STAMP)
	$(BIN)/python bench/uniqueness.py $(UNIQUENESS_ARGS)

# Schemathesis against the service's own OpenAPI document, every route, every check, with
# far more cases per operation than `make test` runs (25): counts per operation on stdout
# and in bench/results/fuzz.json.
FUZZ_EXAMPLES ?= 1000
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_REPORT=bench/results/fuzz.json $(BIN)/python -m pytest \
	  tests/http/test_openapi_fuzz.py -p no:cacheprovider -o timeout=0 -q -s --log-level=WARNING

clean:
	rm -rf $(VENV) $(LATEST_VENV) .pytest_cache .mypy_cache .ruff_cache
	rm -rf $(WEB_CLIENT)/node_modules $(WEB_CLIENT)/dist $(WEB_CLIENT)/.test-build
