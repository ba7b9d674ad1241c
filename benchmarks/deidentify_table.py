"""Check PS3.15 Table E.1-1 as pacs builds it from its two releases and print its counts, for
the closing figures and after upgrading either package: every row parses, every action
code is one PS3.15 defines; the attributes each release lists, the union, the attributes
whose codes disagree (and the code kept), and the count per Basic Profile code and option.
Usage: python -m benchmarks.deidentify_table
"""

from collections import Counter

from pacs.dicom.deidentify.codes import basic_action
from pacs.dicom.deidentify.table import Option, action_table

OPTION_CODES = ("K", "C", "X")


def main() -> None:
    table = action_table()
    rows = [row for _, row in table.rows()]
    for row in rows:
        basic_action(row.basic)  # raises on a code PS3.15 does not define
        unknown = {code for code in row.options.values() if code not in OPTION_CODES}
        if unknown:
            raise SystemExit(f"{row.tag} {row.name}: option action {unknown} is not K, C or X")
    print(
        f"Table E.1-1: {table.attribute_count} attributes "
        f"({len(table.by_tag)} single tags, {len(table.patterns)} patterns), the union of"
    )
    for source, count in table.sources.items():
        print(f"  {source}: {count} attributes")
    print(f"Disagreements: {len(table.disagreements)}")
    for d in table.disagreements:
        print(f"  {d.tag} {d.name}: {d.older} then {d.newer}, kept {d.kept} ({d.where})")
    for code, count in Counter(row.basic for row in rows).most_common():
        print(f"  basic {code:7} {count}")
    for option in Option:
        count = sum(option in row.options for row in rows)
        print(f"  option {option.value:21} {count}")


if __name__ == "__main__":
    main()
