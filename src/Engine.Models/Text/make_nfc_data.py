"""Writes NfcData.txt, the Unicode tables UnicodeNfc.cs needs, from Python's unicodedata.

The engine runs with invariant globalization, where .NET's String.Normalize leaves non-ASCII text
unchanged, so the CLIP tokenizer carries its own NFC. Run: python3 make_nfc_data.py > NfcData.txt

Lines:
  c FIRST LAST CCC   code points FIRST..LAST (hex) have canonical combining class CCC (decimal, > 0)
  d CP A [B] [*]     CP has the canonical decomposition A [B] (one level); '*' marks a primary
                     composite (A + B compose back to CP under NFC)
Hangul syllables are algorithmic and not listed.
"""
import sys
import unicodedata as ud

print(f"# NFC tables from Unicode {ud.unidata_version} (make_nfc_data.py)")
run = None
for cp in range(sys.maxunicode + 2):
    ccc = ud.combining(chr(cp)) if cp <= sys.maxunicode else 0
    if run and (ccc != run[2] or cp != run[1] + 1):
        print(f"c {run[0]:X} {run[1]:X} {run[2]}")
        run = None
    if ccc:
        run = [run[0], cp, ccc] if run else [cp, cp, ccc]
for cp in range(sys.maxunicode + 1):
    if 0xAC00 <= cp <= 0xD7A3:
        continue
    d = ud.decomposition(chr(cp))
    if not d or d.startswith("<"):
        continue
    parts = [int(x, 16) for x in d.split()]
    composite = len(parts) == 2 and ud.normalize("NFC", chr(cp)) == chr(cp)
    print("d " + " ".join(f"{x:X}" for x in [cp] + parts) + (" *" if composite else ""))
