"""Where the project's own files are (schemas, reference data, demo set)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS_DIR = ROOT / "schemas"
DATA_DIR = ROOT / "data"
DEMO_DIR = DATA_DIR / "demo"
