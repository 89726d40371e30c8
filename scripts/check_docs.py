"""Checks that every code block marked `<!-- example: PATH -->` shows the file PATH as it is (the
file is compiled and tested, so the page stays true), in docs/*.md and in the DocC catalogs
(Sources/*/*.docc/**/*.md); in a catalog every Swift block must be such an example.

`--update` rewrites the marked blocks from their files instead of checking them."""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
update = "--update" in sys.argv[1:]
example = re.compile(r"(<!-- example: (\S+) -->\n```\w*\n)(.*?)(```)", re.S)
pages = sorted((root / "docs").glob("*.md")) + sorted(root.glob("Sources/*/*.docc/**/*.md"))
failed = shown = 0


def replace(match: re.Match) -> str:
    path = root / match.group(2)
    return match.group(1) + path.read_text() + match.group(4) if path.is_file() else match.group(0)


for page in pages:
    name = page.relative_to(root)
    text = page.read_text()
    if update:
        new = example.sub(replace, text)
        if new != text:
            page.write_text(new)
            print(f"{name}: examples rewritten")
        text = new
    for match in example.finditer(text):
        path, shown_text = match.group(2), match.group(3)
        shown += 1
        if not (root / path).is_file():
            print(f"{name}: {path} does not exist")
            failed += 1
        elif (root / path).read_text() != shown_text:
            print(f"{name}: the example of {path} differs from the file (scripts/check_docs.py --update rewrites it)")
            failed += 1
        else:
            print(f"{name}: {path} matches")
    if any(part.endswith(".docc") for part in name.parts):
        marked = {m.start(4) for m in example.finditer(text)}
        for block in re.finditer(r"^```swift\n.*?^(```)", text, re.S | re.M):
            if block.start(1) not in marked:
                line = text.count("\n", 0, block.start()) + 1
                print(f"{name}:{line}: a Swift block that is not a compiled example (mark it `<!-- example: PATH -->`)")
                failed += 1
if shown == 0:
    print("no example found: the pages or this script's pattern changed")
    failed += 1
sys.exit(1 if failed else 0)
