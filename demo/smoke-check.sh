#!/bin/sh
# Demo smoke check, run by a restore before it leaves maintenance: the shop's home page and its
# database must be there. Exit 0 means healthy; anything else keeps the environment in
# maintenance and offers Undo.
set -eu
shop="${DEMO_SHOP:?DEMO_SHOP is not set}"
[ -s "${shop}site/index.html" ] || { echo "the home page ${shop}site/index.html is missing or empty" >&2; exit 1; }
[ -s "${shop}shop.sqlite" ] || { echo "the shop database ${shop}shop.sqlite is missing or empty" >&2; exit 1; }
echo "home page and database are there"
