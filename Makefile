# The two set-up commands: `make run` (standalone platform) and `make test` (every test, real Kafka + PostgreSQL).
.PHONY: run test up down status bench clean install

install:
	scripts/bootstrap.sh

run: install
	.venv/bin/itsm-standalone

test:
	scripts/test.sh $(ARGS)

up: install
	scripts/stack.sh up

down:
	scripts/stack.sh down

status:
	scripts/stack.sh status

bench: install
	scripts/bench.sh

clean: down
	rm -rf .run .data
