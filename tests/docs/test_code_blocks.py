"""Every Python code block of the docs is a file of examples/ that the tests run, or a doctest."""

from __future__ import annotations

from docs_support import EXAMPLES, code_blocks, included_path, pages, run_by_a_test


def test_no_page_pastes_python_code() -> None:
    pasted = [
        f"{block.page.relative_to(EXAMPLES.parent)}:{block.line}: a ```{block.argument or 'python'} block"
        for page in pages()
        for block in code_blocks(page)
        if block.kind == "python"
    ]
    assert not pasted, (
        "Python code in the docs is a literalinclude of a file under examples/ (which a test runs) "
        "or a doctest:\n" + "\n".join(pasted)
    )


def test_every_included_file_is_an_example_that_a_test_runs() -> None:
    problems = []
    for page in pages():
        for block in code_blocks(page):
            if block.kind != "include":
                continue
            where = f"{block.page.relative_to(EXAMPLES.parent)}:{block.line}"
            path = included_path(block)
            if not path.is_file():
                problems.append(f"{where}: {block.argument} does not exist")
            elif path.suffix == ".py" and not path.is_relative_to(EXAMPLES):
                problems.append(f"{where}: {block.argument} is not under examples/")
            elif path.suffix == ".py" and not run_by_a_test(path):
                problems.append(f"{where}: no test under tests/ runs {path.relative_to(EXAMPLES.parent)}")
    assert not problems, "\n".join(problems)
