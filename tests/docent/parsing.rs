//! The real parser on real PDFs from corpora/.

use docent::cite;
use docent::error::ErrorCode;
use docent::parse::{self, MediaType};

use crate::common::read_corpus;

fn parse_pdf(name: &str, password: Option<&str>) -> Result<docent::domain::ParsedText, docent::error::AppError> {
    let bytes = read_corpus(name);
    let media = parse::sniff(name, &bytes)?;
    assert_eq!(media, MediaType::Pdf);
    parse::parse(media, &bytes, password)
}

fn page_text(p: &docent::domain::ParsedText, number: u32) -> &str {
    let page = p.pages.iter().find(|x| x.number == number).expect("page");
    &p.text[page.start..page.end]
}

fn assert_offsets_valid(p: &docent::domain::ParsedText) {
    let mut last = 0;
    for page in &p.pages {
        assert!(page.start >= last && page.end >= page.start && page.end <= p.text.len());
        assert!(p.text.is_char_boundary(page.start) && p.text.is_char_boundary(page.end));
        last = page.end;
    }
    for s in cite::segment(&p.text, &p.pages) {
        assert!(s.span.slice(&p.text).is_some(), "segment {} is off char boundaries", s.id);
    }
}

#[test]
fn extracts_bitcoin_whitepaper_with_pages_and_known_phrases() {
    let p = parse_pdf("bitcoin.pdf", None).expect("bitcoin.pdf parses");
    assert_eq!(p.pages.len(), 9);
    assert!(page_text(&p, 1).contains("A purely peer-to-peer version of electronic cash"));
    assert!(page_text(&p, 1).contains("Satoshi Nakamoto"));
    assert!(page_text(&p, 3).contains("Proof-of-Work"));
    assert!(p.text.contains("a proof-of-work system similar to Adam Back's Hashcash"));
    assert!(page_text(&p, 9).contains("References"));
    assert!(!page_text(&p, 1).contains("References"));
    assert_offsets_valid(&p);
}

#[test]
fn extracts_a_cuad_contract_page_by_page() {
    let p = parse_pdf("cuad_limeenergy_distributor_agreement.pdf", None).expect("contract parses");
    assert_eq!(p.pages.len(), 10);
    assert!(page_text(&p, 1).to_lowercase().contains("distributor agreement"));
    assert_offsets_valid(&p);
}

#[test]
fn chinese_text_keeps_offsets_on_char_boundaries() {
    let p = parse_pdf("bitcoin_zh_cn.pdf", None).expect("Chinese PDF parses");
    assert!(p.text.contains("比特币"), "no CJK text extracted");
    assert_offsets_valid(&p);
}

#[test]
fn arabic_text_has_no_bidi_control_characters() {
    let p = parse_pdf("arabic_rtl_docling.pdf", None).expect("Arabic PDF parses");
    assert!(p.text.chars().any(|c| ('\u{0600}'..='\u{06FF}').contains(&c)), "no Arabic letters extracted");
    assert!(!p
        .text
        .chars()
        .any(|c| matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')));
    assert_offsets_valid(&p);
}

/// Arabic PDFs draw their glyphs left to right (visual order); the text must read right to left
/// as written, ligatures and vowel marks in place, and the page map must still hold.
#[test]
fn arabic_comes_out_in_reading_order_with_exact_page_offsets() {
    let p = parse_pdf("arabic_rtl_docling.pdf", None).expect("Arabic PDF parses");
    // The lam-alef ligature (لإ) stays in reading order, where poppler writes اإلنتاجية.
    assert!(
        page_text(&p, 1).starts_with("تحسين الإنتاجية وحل المشكلات من خلال البرمجة بلغة R وPython"),
        "{}",
        page_text(&p, 1)
    );
    assert!(p.text.contains("يمكن للمستخدمين الاستفادة من هذه المكتبات لتطوير حلول مبتكرة للمشكلات المختلفة."));
    assert_offsets_valid(&p);
    let p = parse_pdf("bitcoin_ar.pdf", None).expect("Arabic PDF parses");
    assert!(page_text(&p, 1).starts_with("البيتكوين: نظام نقد الكتروني قائم على مبدأ الند للند"));
    // The damma is drawn before its base; it must follow it (مُ).
    assert!(page_text(&p, 1).contains("مُلخص: نسخة ند إلى ند على نحو محض من النقد الإلكتروني"));
    assert!(page_text(&p, 1).contains("Translated in Arabic from bitcoin.org/bitcoin.pdf by Ahmed Alsayadi"));
    assert_offsets_valid(&p);
}

/// Chinese has no spaces: a sentence the page breaks across lines reads whole, in one segment.
#[test]
fn a_chinese_sentence_broken_across_lines_reads_whole_in_one_segment() {
    let p = parse_pdf("bitcoin_zh_cn.pdf", None).expect("Chinese PDF parses");
    let sentence = "一种完全的点对点电子货币应当允许在线支付从一方直接发送到另一方而不需要通过一个金融机构。";
    assert!(page_text(&p, 1).contains(sentence), "{}", page_text(&p, 1));
    let segments = cite::segment(&p.text, &p.pages);
    assert!(segments.iter().any(|s| s.span.slice(&p.text).is_some_and(|t| t.contains(sentence))));
    assert_offsets_valid(&p);
}

/// Japanese set in CID fonts that are named, not embedded, with no Unicode map (as Japanese PDF
/// writers commonly make them): pdf-extract stops on every page, poppler reads them through the
/// Adobe-Japan1 collection, and a sentence broken across lines reads whole.
#[test]
fn japanese_in_cid_fonts_without_a_unicode_map_reads_in_order() {
    let p = parse_pdf("japanese_wagahai_cid.pdf", None).expect("the Japanese PDF parses");
    let page = page_text(&p, 1);
    assert!(page.starts_with("吾輩は猫である"), "{page}");
    assert!(page.contains("吾輩は猫である。名前はまだ無い。"), "{page}");
    assert!(page.contains("何でも薄暗いじめじめした所でニャーニャー泣いていた事だけは記憶している。"), "{page}");
    assert!(page.contains("本契約は2026年12月3日に締結され"), "{page}");
    assert!(p.warnings.iter().any(|w| w.starts_with("cjk_fonts: page(s) 1 ")), "{:?}", p.warnings);
    assert!(!p.warnings.iter().any(|w| w.contains("could not be extracted")), "{:?}", p.warnings);
    assert_offsets_valid(&p);
}

/// The IRS's three columns are drawn row by row, each line across all three: read as drawn, one
/// column's line ran into the next's ("…to the Internal use a different address…"). They read
/// column by column, as poppler reads them.
#[test]
fn columns_drawn_row_by_row_read_column_by_column() {
    let p = parse_pdf("irs_2007_instructions_1040nr.pdf", None).expect("the IRS PDF parses");
    let page = page_text(&p, 1);
    assert!(page.contains("Section references are to the Internal\nRevenue Code unless otherwise noted."), "{page}");
    assert!(!page.contains("to the Internal use a different address"), "{page}");
    assert_offsets_valid(&p);
    // A page drawn column by column is read as before.
    let p = parse_pdf("latex_multicolumn.pdf", None).expect("the LaTeX PDF parses");
    assert!(!p.text.is_empty());
}

/// The IRS's tax table draws each row of a block, then the same row of the next block, and puts
/// a block's cells in one string: in drawing order the cells of two blocks ran together
/// ("131" and "0 5" became "13105"). Such a page of number cells reads by position, row by row,
/// every cell apart, its stacked header cells as phrases; prose pages of the same file keep their
/// order.
#[test]
fn tax_table_cells_drawn_block_by_block_read_row_by_row_apart() {
    let p = parse_pdf("irs_2007_instructions_1040nr.pdf", None).expect("the IRS PDF parses");
    let page = page_text(&p, 34);
    assert!(page.contains("0 5 0 0 0 1,300 1,325 131 131 131 2,700 2,725 271 271 271"), "{page}");
    assert!(page.contains("975 1,000 99 99 99"), "{page}");
    assert!(!page.contains("13105") && !page.contains("229975"), "{page}");
    // The header cells stacked over lines read as poppler reads them: "At" over "least".
    assert!(page.contains("At least But less than Single Qualifying widow(er) Married filing separately"), "{page}");
    // The caption under three cells is not part of the last one; the example beside the sample
    // table reads whole.
    assert!(!page.contains("separately Your tax is"), "{page}");
    assert!(page.contains("Next he finds the column for qualifying widower and reads down the column."), "{page}");
    assert!(page_text(&p, 1).contains("Section references are to the Internal\nRevenue Code"));
    assert_offsets_valid(&p);
}

/// Each standard security handler as qpdf writes it (`qpdf --encrypt USER OWNER BITS`; Debian's
/// qpdf, installed by scripts/test.sh) on a corpus PDF: refused without the password or with a
/// wrong one, the same text as the original with the user password and with the owner password.
#[test]
fn every_standard_security_handler_opens_with_the_password_and_only_with_it() {
    let plain = parse_pdf("bitcoin.pdf", None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // qpdf writes RC4 only when told that weak cryptography is meant.
    let handlers: [(&str, &[&str], &[&str]); 4] = [
        ("RC4 128-bit (R3)", &["--allow-weak-crypto"], &["128", "--use-aes=n"]),
        ("AES-128 (R4)", &[], &["128", "--use-aes=y"]),
        ("AES-256 (R5)", &[], &["256", "--force-R5"]),
        ("AES-256 (R6)", &[], &["256"]),
    ];
    for (handler, options, args) in handlers {
        let locked = dir.path().join("locked.pdf");
        let status = std::process::Command::new("qpdf")
            .args(options)
            .args(["--encrypt", "user-secret", "owner-secret"])
            .args(args)
            .arg("--")
            .arg(crate::common::corpus("bitcoin.pdf"))
            .arg(&locked)
            .status()
            .expect("qpdf (Debian's qpdf) is installed by scripts/test.sh");
        assert!(status.success(), "{handler}");
        let bytes = std::fs::read(&locked).unwrap();
        for password in [None, Some("wrong")] {
            let err = parse::parse(MediaType::Pdf, &bytes, password).unwrap_err();
            assert_eq!(err.code, ErrorCode::PdfEncrypted, "{handler} with {password:?}: {err}");
        }
        for password in ["user-secret", "owner-secret"] {
            let opened = parse::parse(MediaType::Pdf, &bytes, Some(password))
                .unwrap_or_else(|e| panic!("{handler} with {password}: {e}"));
            assert_eq!(opened.text, plain.text, "{handler} with {password}");
        }
    }
}

/// A file whose cross-reference table points nowhere is rebuilt from its objects and reads as
/// the intact file does; one whose page tree is lost too gets its pages back from the page
/// objects found.
#[test]
fn a_damaged_cross_reference_table_is_rebuilt_before_the_file_is_refused() {
    let bytes = read_corpus("bitcoin.pdf");
    let at = bytes.windows(9).rposition(|w| w == b"startxref").unwrap() + 9;
    let mut damaged = bytes[..at].to_vec();
    damaged.extend_from_slice(b"\n12\n%%EOF\n");
    let repaired = parse::parse(MediaType::Pdf, &damaged, None).expect("rebuilt");
    assert_eq!(repaired.text, parse_pdf("bitcoin.pdf", None).unwrap().text);
    assert!(repaired.warnings.iter().any(|w| w.starts_with("repaired: ")), "{:?}", repaired.warnings);

    let p = parse_pdf("broken_xref_unreadablemetadata.pdf", None).expect("rebuilt");
    assert_eq!(p.pages.len(), 3);
    assert!(p.text.contains("Dielectric Strength"));
    assert!(p.warnings.iter().any(|w| w.contains("page tree is lost")), "{:?}", p.warnings);
    assert_offsets_valid(&p);
}

#[test]
fn rejects_encrypted_pdf_with_clear_error_and_opens_it_with_the_password() {
    let err = parse_pdf("encrypted_rc4_userpw-openpassword.pdf", None).unwrap_err();
    assert_eq!(err.code, ErrorCode::PdfEncrypted);
    let wrong = parse_pdf("encrypted_rc4_userpw-openpassword.pdf", Some("nope")).unwrap_err();
    assert_eq!(wrong.code, ErrorCode::PdfEncrypted);
    assert!(wrong.message.contains("password does not open"));
    let opened = parse_pdf("encrypted_rc4_userpw-openpassword.pdf", Some("openpassword")).expect("opens with password");
    assert!(!opened.text.trim().is_empty());
}

#[test]
fn a_password_given_for_an_unencrypted_pdf_is_ignored() {
    let p = parse_pdf("bitcoin.pdf", Some("unused")).expect("an unencrypted PDF opens with any password");
    assert_eq!(p.pages.len(), 9);
}

#[test]
fn scanned_pdf_without_text_layer_is_a_specific_error() {
    let err = parse_pdf("scanned_no_textlayer_docling_ocr_test.pdf", None).unwrap_err();
    assert_eq!(err.code, ErrorCode::PdfNoTextLayer);
    assert!(err.message.contains("no text layer"));
}

#[test]
fn corrupted_pdf_yields_the_text_that_survives() {
    let p = parse_pdf("broken_zen_of_python_corrupted.pdf", None).expect("recovers what it can");
    // Its lines are shown with the `'` operator, on a page turned a quarter: every line, one a line.
    assert!(p.text.contains("Beautiful is better than ugly.\nExplicit is better than implicit.\n"), "{}", p.text);
    assert!(p.text.contains("Namespaces are one honking great idea −− let’s do more of those!"), "{}", p.text);
    assert_offsets_valid(&p);
}

#[test]
fn truncated_pdf_is_reported_as_corrupt() {
    let bytes = read_corpus("bitcoin.pdf");
    let cut = &bytes[..bytes.len() / 3];
    match parse::parse(MediaType::Pdf, cut, None) {
        Err(e) => assert!(matches!(e.code, ErrorCode::PdfCorrupt | ErrorCode::PdfNoTextLayer), "{e}"),
        Ok(p) => assert!(p.pages.len() <= 9),
    }
}

/// The evaluation scores citations against CUAD's gold clauses, which are quoted from another
/// extraction of the PDF: nearly all of them must be found in docent's own text of it.
#[test]
fn cuad_gold_clauses_are_located_in_the_parsed_contract() {
    use docent::eval::metrics::{locate_clause, python_str_list};
    let bytes = read_corpus("cuad_limeenergy_distributor_agreement.pdf");
    let media = docent::parse::sniff("contract.pdf", &bytes).unwrap();
    let text = docent::parse::parse(media, &bytes, None).unwrap().text;
    let gold: serde_json::Value =
        serde_json::from_slice(&read_corpus("cuad_limeenergy_distributor_agreement.gold.json")).unwrap();
    let (mut clauses, mut missing) = (0, Vec::new());
    for (category, entry) in gold["categories"].as_object().unwrap() {
        let context = entry["context"].as_str().unwrap_or_default();
        if context.is_empty() {
            continue;
        }
        let list = python_str_list(context).unwrap_or_else(|| panic!("{category}: {context}"));
        for clause in list {
            clauses += 1;
            let spans = locate_clause(&text, &clause);
            if spans.is_empty() {
                missing.push(format!("{category}: {clause}"));
            }
            assert!(spans.iter().all(|s| s.slice(&text).is_some()));
        }
    }
    assert!(clauses >= 40, "{clauses} clauses");
    // Measured: 42 of 44; two clauses are not found word for word in docent's text (to be examined
    // with the evaluation: a difference of extraction somewhere inside each).
    assert!(missing.len() <= 2, "{} of {clauses} not found: {missing:#?}", missing.len());
}
