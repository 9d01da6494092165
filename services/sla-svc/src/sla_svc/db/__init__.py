from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"
