"""Writes corpora/japanese_wagahai_cid.pdf: a Japanese page set in the Adobe-Japan1 CID fonts
that Japanese PDF writers use without embedding them (HeiseiMin-W3, HeiseiKakuGo-W5, encoding
UniJIS-UCS2-H), with reportlab. The text is the opening sentences of Natsume Sōseki's
吾輩は猫である (1905, public domain; not checked against an edition here), and one
contract-style line with Latin digits.

    python3 -m pip install --target /tmp/rl reportlab && PYTHONPATH=/tmp/rl python3 scripts/make-japanese-pdf.py
"""

from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

TITLE = "吾輩は猫である"
BODY = [
    "吾輩は猫である。名前はまだ無い。",
    "どこで生れたかとんと見当がつかぬ。何でも薄暗いじめじめした所で",
    "ニャーニャー泣いていた事だけは記憶している。吾輩はここで始めて",
    "人間というものを見た。しかもあとで聞くとそれは書生という人間中で",
    "一番獰悪な種族であったそうだ。",
]
CONTRACT = "第1条　本契約は2026年12月3日に締結され、東京地方裁判所を専属的合意管轄裁判所とする。"


def main(path="corpora/japanese_wagahai_cid.pdf"):
    pdfmetrics.registerFont(UnicodeCIDFont("HeiseiMin-W3"))
    pdfmetrics.registerFont(UnicodeCIDFont("HeiseiKakuGo-W5"))
    c = canvas.Canvas(path, pagesize=A4, invariant=1)
    c.setTitle(TITLE)
    width, height = A4
    c.setFont("HeiseiKakuGo-W5", 18)
    c.drawString(72, height - 90, TITLE)
    c.setFont("HeiseiMin-W3", 12)
    y = height - 130
    for line in BODY:
        c.drawString(72, y, line)
        y -= 20
    y -= 20
    c.setFont("HeiseiKakuGo-W5", 11)
    c.drawString(72, y, CONTRACT[:30])
    c.drawString(72, y - 18, CONTRACT[30:])
    c.showPage()
    c.save()


if __name__ == "__main__":
    main()
