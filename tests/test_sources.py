from pathlib import Path

import pytest

from index.sources import SourceError, article_id_for, discover, read_article


def test_html_is_parsed_scripts_and_styles_dropped(corpus: Path):
    article = read_article(corpus / "bread.html")
    assert article.title == "Baking bread"
    assert "alert" not in article.text and "color:red" not in article.text
    assert article.text.split("\n\n") == ["Baking bread", "Flour, water and salt make dough.",
                                          "Bake the loaf for forty minutes."]


def test_html_entities_stay_literal_text(tmp_path: Path):
    page = tmp_path / "x.html"
    page.write_text("<p>&lt;script&gt;alert(1)&lt;/script&gt; <img src=x onerror=alert(1)></p>")
    article = read_article(page)
    assert article.text == "<script>alert(1)</script>"  # text, to be shown escaped
    assert "onerror" not in article.text


def test_markdown_title_and_txt_title(corpus: Path):
    assert read_article(corpus / "rivers.md").title == "Rivers of Europe"
    seed = read_article(corpus / "us-mexico-migration-talks.txt")
    assert seed.title.startswith("المسؤولون الأمريكيون")
    assert seed.id == "us-mexico-migration-talks"


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("empty.txt", b"", "is empty"),
    ("blank.md", b"  \n\n ", "is empty"),
    ("latin1.txt", "café".encode("latin-1"), "not valid UTF-8"),
    ("binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
    ("notes.pdf", b"%PDF-1.4", "unsupported file type"),
    ("only-script.html", b"<script>alert(1)</script>", "no text content"),
])
def test_bad_files_get_a_clear_error_naming_them(tmp_path: Path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SourceError) as info:
        read_article(path)
    assert name in str(info.value) and reason in str(info.value)


def test_size_limit(tmp_path: Path):
    path = tmp_path / "big.txt"
    path.write_text("word " * 1000)
    with pytest.raises(SourceError, match="over the limit"):
        read_article(path, max_bytes=1000)


def test_discover_recurses_skips_hidden_and_reports_missing(tmp_path: Path, corpus: Path):
    (corpus / ".hidden").mkdir()
    (corpus / ".hidden" / "x.txt").write_text("secret")
    (corpus / "sub").mkdir()
    (corpus / "sub" / "y.txt").write_text("nested")
    (corpus / "image.png").write_bytes(b"\x89PNG")
    files, errors = discover([corpus, tmp_path / "missing"])
    assert sorted(f.name for f in files) == ["bread.html", "rivers.md",
                                             "us-mexico-migration-talks.txt", "y.txt"]
    assert len(errors) == 1 and "missing" in str(errors[0])


def test_article_ids_are_readable_slugs():
    assert article_id_for(Path("My Article (2024).txt")) == "my-article-2024"
    assert article_id_for(Path("مقال جديد.md")) == "مقال-جديد"
