#!/usr/bin/env bash
# Installe le registre dans ./.venv (jamais dans le Python du système : PEP 668).
#   bash scripts/setup.sh          le registre seul
#   bash scripts/setup.sh --test   avec les dépendances des tests (ce que fait .ci/run)
# Sur une Debian/Ubuntu sans le module venv, installe python3-venv avec apt-get (en root ; sinon dit
# quelle commande lancer avec sudo). Variables : PYTHON (défaut python3), VENV (défaut .venv).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
EXTRAS=""
[ "${1:-}" = "--test" ] && EXTRAS="[test]"

say() { printf '[installation] %s\n' "$*"; }
fail() { printf '[installation] ERREUR : %s\n' "$*" >&2; exit 1; }

command -v "$PY" >/dev/null || fail "$PY introuvable. Installez Python 3.11 ou plus récent (apt-get install python3)."
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  fail "Python 3.11 ou plus récent est nécessaire ($("$PY" --version 2>&1) trouvé)."

if ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  minor=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    say "module venv absent : apt-get install python3-venv python${minor}-venv"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -q update >/dev/null
    apt-get -q install -y python3-venv "python${minor}-venv" >/dev/null ||
      apt-get -q install -y python3-venv >/dev/null
  else
    fail "le module venv de Python manque. Lancez : sudo apt-get install python3-venv python${minor}-venv"
  fi
fi

# A folder left half-made by an earlier failure (no pip inside) is made again.
if [ -d "$VENV" ] && ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  say "environnement $VENV incomplet : recréé"
  rm -rf "$VENV"
fi
if [ ! -d "$VENV" ]; then
  say "création de l'environnement virtuel $VENV ($("$PY" --version 2>&1))"
  "$PY" -m venv "$VENV"
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore PIP_PROGRESS_BAR=off
say "installation des dépendances Python dans $VENV (pip install -e \".$EXTRAS\")"
"$VENV/bin/python" -m pip install -q -e ".$EXTRAS"
say "prêt. Pour utiliser la commande registry : source $VENV/bin/activate (ou $VENV/bin/registry)"
