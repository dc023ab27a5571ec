"""The search page finds the chapter a reader is looking for."""
import re
from urllib.parse import quote

import nbformat
import pytest

from book import troubleshooting_chapter

# What a reader might type, and a page that must be among the results.
QUERIES = {
    "addmm": "02-constructing-linear.html",
    "nn.Parameter": "03-parameters.html",
    "BatchNorm": "04-bias.html",
    "synchronize": "05-gpu.html",
    "gradcheck": "06-under-the-hood.html",
    "load_digits": "07-classifier.html",
    "LoRA": "08-modern-models.html",
    "leaf Variable": troubleshooting_chapter().stem + ".html",
    "shapes cannot be multiplied": troubleshooting_chapter().stem + ".html",
}

# The opening words of each error message the troubleshooting chapter covers, as a reader pastes
# them (in the wordings of the pinned and of newer releases). That chapter must come first.
# It is found by name, so the test survives the chapter's renumbering.
MESSAGES = [
    "mat1 and mat2 shapes cannot be multiplied",
    "mm: mat1 and mat2 shapes cannot be multiplied",
    "addmm: mat1 and mat2 shapes cannot be multiplied",
    "self must be a matrix",
    "mm: self must be a matrix, got 3-D tensor",
    "The expanded size of the tensor must match the existing size",
    "The size of tensor a must match the size of tensor b",
    "mat1 and mat2 must have the same dtype, but got Float and BFloat16",
    "expected m1 and m2 to have the same dtype",
    "self and mat2 must have the same dtype",
    "Cannot convert a MPS Tensor to float64 dtype",
    "Expected all tensors to be on the same device, but found at least two devices",
    "Expected all tensors to be on the same device, but got mat1 is on cpu",
    "Tensor on device meta is not on the expected device",
    "can't convert cuda:0 device type tensor to numpy",
    "Can't call numpy() on Tensor that requires grad",
    "cannot assign 'torch.FloatTensor' as parameter 'weight'",
    "'NoneType' object has no attribute 'zero_'",
    "Error(s) in loading state_dict for Linear: Missing key(s) in state_dict",
    "Unexpected key(s) in state_dict",
    "size mismatch for weight: copying a param with shape",
    "a leaf Variable that requires grad is being used in an in-place operation",
    "a view of a leaf Variable that requires grad is being used in an in-place operation",
    "one of the variables needed for gradient computation has been modified by an inplace "
    "operation",
    "returned an incorrect number of gradients",
    "Jacobian mismatch for output 0 with respect to input 0",
    "element 0 of tensors does not require grad and does not have a grad_fn",
    "Can't access the shape of an uninitialized parameter or buffer",
    "Attempted to use an uninitialized parameter",
    "expected target dtype to be Long or Byte, but got Int",
    "Weights only load failed",
    "Unsupported global: GLOBAL torch.nn.modules.container.Sequential",
    "Tensor.item() cannot be called on meta tensors",
    "embed_dim must be divisible by num_heads",
    "'LoRALinear' object has no attribute 'weight'",
    "PyTorch is checking the matmul precision without a specific backend name",
    "No module named 'models'",
]


def heading_messages() -> list[str]:
    """The message each section of the troubleshooting chapter is named after (the first quoted
    text of its heading), cut to its first eight words, as a reader pastes its opening (without
    the punctuation the cut leaves at its end)."""
    found = []
    for cell in nbformat.read(troubleshooting_chapter(), as_version=4).cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                quoted = re.match(r"#{2,3} `([^`]+)`", line)
                if quoted:
                    opening = quoted[1].split(";")[0]  # a clause, as "no data!" follows
                    found.append(" ".join(opening.split()[:8]).rstrip(".,:!"))
    assert len(found) > 40, found
    return found


# Every section's message, and the wordings above that other releases print.
MESSAGES += [message for message in heading_messages() if message not in MESSAGES]


# Sphinx's own search code, as the search page runs it for a query typed into the field: it
# clears nothing itself, so the previous results are removed first. Summaries (each result's page
# fetched and excerpted, after the ranking) are switched off: they do not change the order.
QUERY_JS = """async (query) => {
    DOCUMENTATION_OPTIONS.SHOW_SEARCH_SUMMARY = false;
    document.getElementById("search-results").replaceChildren();
    Search.performSearch(query);
    // Results are added one by one (5 ms apart); the summary line is written after the last.
    while (!/Search finished|did not match/.test(Search.status.innerText))
        await new Promise(resolve => setTimeout(resolve, 10));
    return [...document.querySelectorAll("#search-results ul.search li > a")].map(a => a.href);
}"""


def address_bar_search(page, site_url, query: str) -> list[str]:
    """The result links, best first, of a search typed into the address bar (search.html?q=)."""
    page.goto(f"{site_url}/search.html?q={quote(query)}", wait_until="load")
    page.wait_for_selector("#search-results ul.search li", timeout=30_000)
    page.wait_for_function("() => /Search finished/.test(Search.status.innerText)")
    return page.eval_on_selector_all("#search-results ul.search li > a",
                                     "anchors => anchors.map(a => a.href)")


@pytest.fixture(scope="module")
def results(browser, site_url):
    """The links of the search page's results for every query, best first.

    The first query goes through the address bar, as a reader's search from any page does; the
    page then answers every query with the same code, in one visit (a visit per query costs
    about two seconds each, for the same ranking).
    """
    first = next(iter(QUERIES))
    page = browser.new_page()
    found = {first: address_bar_search(page, site_url, first)}
    for query in [*QUERIES, *MESSAGES]:
        if query not in found:
            found[query] = page.evaluate(QUERY_JS, query)
    page.close()
    return found


def test_the_page_and_the_query_code_agree(browser, site_url, results):
    """The in-page queries rank as the address-bar search does (checked on two queries)."""
    page = browser.new_page()
    found = {query: address_bar_search(page, site_url, query)
             for query in (MESSAGES[0], "gradcheck")}
    page.close()
    for query, links in found.items():
        assert links == results[query], query


@pytest.mark.parametrize("query", QUERIES)
def test_search_finds_the_chapter(results, query):
    links = results[query]
    assert any(QUERIES[query] in link for link in links), (query, links)


@pytest.mark.parametrize("message", MESSAGES)
def test_search_ranks_troubleshooting_first_for_an_error(results, message):
    links = results[message]
    assert links, message
    assert "troubleshooting.html" in links[0].split("#")[0], (message, links[:5])
