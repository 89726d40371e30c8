"""Checks that every code block marked `<!-- example: PATH -->` in docs/*.md shows PATH as it is
(the file is compiled and tested, so the page stays true)."""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
failed = 0
for page in sorted((root / "docs").glob("*.md")):
    text = page.read_text()
    for match in re.finditer(r"<!-- example: (\S+) -->\n```\w*\n(.*?)```", text, re.S):
        path, shown = match.group(1), match.group(2)
        if (root / path).read_text() != shown:
            print(f"{page.name}: the example of {path} differs from the file")
            failed += 1
        else:
            print(f"{page.name}: {path} matches")
sys.exit(1 if failed else 0)
