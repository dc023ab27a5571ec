// Rearranges the single-page build of the book for paper (tools/pdf.py runs it in the page).
// Returns the contents' entries, so that a caller can check them against the printed PDF.
(info) => {
  const article = document.querySelector("article.bd-article");
  const intro = article.querySelector(":scope > section");
  const textOf = (element) => {
    const copy = element.cloneNode(true);
    copy.querySelectorAll(".headerlink").forEach((anchor) => anchor.remove());
    return copy.textContent.replace(/\s+/g, " ").trim();
  };
  const make = (tag, attributes = {}, text = "") => {
    const element = Object.assign(document.createElement(tag), attributes);
    if (text) element.textContent = text;
    return element;
  };
  // A link whose text becomes the page number of its target once the PDF has been laid out.
  const pageRef = (id) => make("a", {href: `#${id}`, className: "pdf-page-ref"}, "000");

  // Each chapter starts on a new page; its anchor (the target of links between chapters) moves
  // from the empty marker before it to its heading, so that a link lands on the chapter's page.
  const chapters = [...article.querySelectorAll("span[id^='document-']")].map((marker) => {
    const section = marker.nextElementSibling;
    const heading = section.querySelector("h2");
    section.classList.add("pdf-chapter");
    heading.id = marker.id;
    marker.removeAttribute("id");
    return {id: heading.id, title: textOf(heading), section};
  });
  if (chapters.length !== info.chapters) {
    throw new Error(`found ${chapters.length} chapters, expected ${info.chapters}`);
  }

  // The title page takes the book's title from the introduction, which becomes a chapter.
  const title = intro.querySelector("h1");
  const titlePage = make("section", {className: "pdf-title-page"});
  titlePage.append(make("h1", {}, textOf(title)), make("p", {}, `By ${info.author}`),
                   make("p", {}, info.tested));
  const introHeading = make("h2", {id: "pdf-introduction"}, "Introduction");
  title.replaceWith(introHeading);
  intro.classList.add("pdf-chapter");
  // Its sections, level with the chapters on the website, go one level down, under it (the
  // PDF's bookmarks follow the heading levels).
  // (The chapters, from the toctree at its end, are inside it and stay as they are.)
  [...intro.querySelectorAll("h2:not(#pdf-introduction)")].filter(
    (heading) => !heading.closest(".toctree-wrapper")).forEach((heading) => {
    const lower = make("h3", {className: heading.className});
    if (heading.id) lower.id = heading.id;
    lower.append(...heading.childNodes);
    heading.replaceWith(lower);
  });

  // The exercises' solutions, folded on the website, go to the back of the book, by chapter.
  const back = make("section", {className: "pdf-chapter", id: "pdf-solutions"});
  back.append(make("h2", {id: "pdf-solutions-title"}, "Solutions to the exercises"));
  let count = 0;
  for (const chapter of chapters) {
    const solutions = [...chapter.section.querySelectorAll("div.solution.admonition")];
    if (solutions.length) back.append(make("h3", {}, chapter.title));
    for (const solution of solutions) {
      const exercise = solution.previousElementSibling;  // exercise_style: solution_follow_exercise
      if (!exercise || !exercise.classList.contains("exercise")) {
        throw new Error(`a solution in "${chapter.title}" does not follow its exercise`);
      }
      const name = textOf(exercise.querySelector(".admonition-title"));
      const id = `pdf-solution-${++count}`;
      back.append(make("h4", {id}, `Solution to ${name}`));
      const question = make("p", {className: "pdf-solution-link"}, "The exercise: page ");
      question.append(pageRef(exercise.id));
      back.append(question);
      back.append(...[...solution.children].filter(
        (child) => !child.classList.contains("admonition-title")));
      const note = make("p", {className: "pdf-solution-link"}, "Solution: page ");
      note.append(pageRef(id));
      exercise.append(note);
      solution.remove();
    }
  }
  article.append(back);

  // The contents, after the title page.
  const entries = [{id: "pdf-introduction", title: "Introduction"},
                   ...chapters.map(({id, title}) => ({id, title})),
                   {id: "pdf-solutions-title", title: "Solutions to the exercises"}];
  const contents = make("nav", {className: "pdf-contents"});
  const list = make("ol");
  for (const entry of entries) {
    const item = make("li");
    item.append(make("a", {href: `#${entry.id}`}, entry.title), make("span", {className: "pdf-leader"}),
                pageRef(entry.id));
    list.append(item);
  }
  contents.append(make("h2", {}, "Contents"), list);
  article.prepend(titlePage, contents);

  // A heading's line breaks (from the source) would vanish from its bookmark: make them spaces.
  // And a heading whose box starts exactly at the top of a page (its top margin dropped at the
  // page break) gets its text twice in Chromium's bookmark ("7.6. 7.6. The same model as The
  // same model as ..."): turn the top margin into padding, which a page break keeps.
  article.querySelectorAll("h1, h2, h3, h4").forEach((heading) => {
    const walker = document.createTreeWalker(heading, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
      walker.currentNode.nodeValue = walker.currentNode.nodeValue.replace(/\s+/g, " ");
    }
    const style = getComputedStyle(heading);
    const top = parseFloat(style.marginTop) + parseFloat(style.paddingTop);
    heading.style.setProperty("margin-top", "0", "important");
    heading.style.setProperty("padding-top", `${top}px`, "important");
  });

  // What the website folds is open on paper.
  document.querySelectorAll("details").forEach((details) => { details.open = true; });
  return {entries, solutions: count, images: document.querySelectorAll("article img").length};
}
