"""The site's Flask-Babel catalogues: French msgids (the site is written in French), English translations.

Domains (one .po per half of the site, so two people never edit the same file):
  messages  web/pages, web/templates (base, index, experience, error, pages/), web/errors.py
  publish   web/accounts, web/publish, web/admin and their templates

    python -m web.translations extract   # templates + code -> <domain>.pot, then merged into en/<domain>.po
    python -m web.translations compile   # en/<domain>.po -> en/<domain>.mo (committed: no build step after pip install)

tests/test_i18n.py fails when a .mo is older than its .po or a msgid of the pages has no English.
"""
