#!/usr/bin/env python3
"""Builds questions.jsonl for the Sanad eval set.

Gold spans are given here as exact sentence strings copied from the article;
their character offsets are computed with str.find on the file content read
with open(path, encoding="utf-8").read(), and each string must occur exactly once.
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ARTICLE_ID = "us-mexico-migration-talks"
ARTICLE = os.path.join(HERE, "..", "seeds", ARTICLE_ID + ".txt")
OUT = os.path.join(HERE, "questions.jsonl")

text = open(ARTICLE, encoding="utf-8").read()

# --- sentences (exact article text) ---------------------------------------
S = {
    "p1": "يجتمع مسؤولون من الولايات المتحدة والمكسيك في واشنطن يوم الجمعة لمناقشة سبل ردع الهجرة غير الشرعية مع تزايد الضغوط على إدارة بايدن لمعالجة القضية قبل الانتخابات الرئاسية في نوفمبر.",
    "p2a": "لكن لا يتوقع أي من الجانبين تحقيق تقدم كبير من مناقشات يوم الجمعة.",
    # one sentence in substance, the source has a stray ". ،" after the date
    "p2b": text[text.index("تعد المحادثات،"):text.index("على الحدود بين الولايات المتحدة والمكسيك.") + len("على الحدود بين الولايات المتحدة والمكسيك.")],
    # same sentence up to the stray full stop after the date (names + date only)
    "p2b_main": text[text.index("تعد المحادثات،"):text.index("في 27 ديسمبر.") + len("في 27 ديسمبر.")],
    "p3a": "بعد تلك المحادثات، بدأت المكسيك عمليات ترحيل الفنزويليين، وهم من الجنسيات العليا الذين يعبرون إلى الولايات المتحدة، وبدأت في منع المزيد من المهاجرين الذين يعبرون إلى المكسيك من غواتيمالا.",
    "p3b": "وأدت هذه التحركات، فضلا عن أنماط الهجرة الموسمية، إلى انخفاض كبير في عدد المهاجرين الذين يعبرون الحدود في بداية العام.",
    "p4a": "لكن المسؤولين الأميركيين ومصادر أخرى مطلعة على المحادثات يقولون إنهم لا يتوقعون نتائج من اجتماع الجمعة.",
    "p4b": "وقال مسؤول كبير في الإدارة الأمريكية تحدث إلى الصحفيين يوم الخميس: “لا نتوقع أي إعلانات كبيرة غدًا”.",
    "p4c": "وقال مسؤول أميركي كبير آخر إنه سيكون هناك المزيد من المناقشات خلال العام المقبل.",
    "p5": "وقد وضع الجانبان أهدافًا واضحة لما يريدانه من المفاوضات للمضي قدمًا، وفقًا لمصادر تحدثت إلى شبكة إن بي سي نيوز في وقت سابق من هذا الشهر.",
    "p6a": "ومن بين أولويات المكسيك إقناع الولايات المتحدة بالموافقة على تخصيص مبالغ كبيرة لمكافحة الهجرة من خلال “معالجة الأسباب الجذرية”، أي الفساد السياسي والعنف والفقر في دول نصف الكرة الغربي.",
    "p6b": "وقال مسؤول ثالث كبير في الإدارة الأمريكية يوم الخميس إن الولايات المتحدة مهتمة بالعمل مع المكسيك لمعالجة الأسباب الجذرية.",
    "p7a": "في وقت سابق من هذا الشهر، دعا الرئيس المكسيكي أندريس مانويل لوبيز أوبرادور الولايات المتحدة علنا إلى توزيع 20 مليار دولار كمساعدات لدول أمريكا اللاتينية ومنطقة البحر الكاريبي وتعليق العقوبات المفروضة على فنزويلا، من بين طلبات أخرى.",
    "p7b": "وفي ذلك الوقت، قال مسؤول أمريكي إن لوبيز أوبرادور كان لديه “أجندة طموحة”.",
    "p8a": "وقد أكد المسؤولون الأميركيون والمكسيكيون أن مفاوضاتهم الجارية ليست تتعلق بالمعاملات.",
    "p8b": "على سبيل المثال، لن تتوقف المكسيك عن مساعدة الولايات المتحدة فيما يتصل بالهجرة إذا لم تلتزم بإنفاق عشرين مليار دولار في المنطقة.",
    "p8c": "وقال شخصان مطلعان على المفاوضات إن المكسيك لديها مصلحتها الخاصة في الحد من الهجرة غير الشرعية لأن تدفق المهاجرين المتجهين شمالاً يؤثر على المكسيك أيضًا.",
    "p9a": "غير أن الولايات المتحدة تعتمد بشكل كبير على استعداد المكسيك للمساعدة.",
    "p9b": "ومع استمرار المحادثات في واشنطن هذا الأسبوع وعلى مدار العام، تتمتع المكسيك بقدر كبير من النفوذ.",
    "p10": "تم نشر هذه المقالة في الأصل على موقع NBCNews.com",
}


def span(key):
    s = S[key]
    i = text.find(s)
    assert i >= 0, key
    assert text.find(s, i + 1) < 0, "not unique: " + key
    return [i, i + len(s)]


# --- pairs -----------------------------------------------------------------
# Each pair: id, type, paragraph, span keys, follow_up_of (pair id or None),
# en: (question, answer, key_facts, standalone), ar: same.
P = []


def add(n, typ, para, keys, en, ar, follow=None):
    P.append(dict(n=n, type=typ, para=para, keys=keys, en=en, ar=ar, follow=follow))


# 1-4: attendees -> earlier talks -> what Mexico did -> effect (follow-up chain)
add(1, "list", 2, ["p2b_main"],
    ("Who is expected to attend Friday's talks in Washington?",
     "Secretary of State Antony Blinken, Homeland Security Secretary Alejandro Mayorkas, White House homeland security adviser Elizabeth Sherwood-Randall, and Mexican Foreign Secretary Alicia Bárcena.",
     ["Blinken", "Mayorkas", "Sherwood", "Alicia"], None),
    ("من سيحضر محادثات يوم الجمعة في واشنطن؟",
     "وزير الخارجية أنتوني بلينكن، ووزير الأمن الداخلي أليخاندرو مايوركاس، ومستشارة الأمن الداخلي بالبيت الأبيض إليزابيث شيروود راندال، ووزيرة الخارجية المكسيكية أليسيا بارسينا.",
     ["بلينكن", "مايوركاس", "شيروود راندال", "بارسينا"], None))
add(2, "followup", 2, ["p2b_main"],
    ("And when did the discussions they are continuing begin?",
     "They began in Mexico on December 27.",
     ["December 27"],
     "When did the earlier US–Mexico migration discussions, held in Mexico, begin?"),
    ("ومتى بدأت المناقشات التي تُعدّ هذه المحادثات امتدادًا لها؟",
     "بدأت في المكسيك في 27 ديسمبر.",
     ["27 ديسمبر"],
     "متى بدأت المناقشات الأمريكية المكسيكية بشأن الهجرة التي عُقدت في المكسيك؟"),
    follow=1)
add(3, "followup", 3, ["p3a"],
    ("What did Mexico do after those talks?",
     "It began deporting Venezuelans, one of the top nationalities crossing into the US, and started blocking more migrants from crossing into Mexico from Guatemala.",
     ["Venezuelan", "Guatemala"],
     "What did Mexico do after the US–Mexico migration talks that began in Mexico on December 27?"),
    ("وماذا فعلت المكسيك بعد تلك المحادثات؟",
     "بدأت ترحيل الفنزويليين، وهم من أكثر الجنسيات عبورًا إلى الولايات المتحدة، وبدأت منع المزيد من المهاجرين الذين يعبرون إليها من غواتيمالا.",
     ["الفنزويليين", "غواتيمالا"],
     "ماذا فعلت المكسيك بعد محادثات الهجرة مع الولايات المتحدة التي بدأت في المكسيك في 27 ديسمبر؟"),
    follow=2)
add(4, "followup", 3, ["p3b"],
    ("What was the effect of those moves?",
     "Together with seasonal migration patterns, they led to a significant drop in the number of migrants crossing the border at the start of the year.",
     ["drop"],
     "What was the effect of Mexico deporting Venezuelans and blocking migrants from Guatemala on border crossings?"),
    ("وما الذي ترتّب على هذه التحركات؟",
     "أدت، إلى جانب أنماط الهجرة الموسمية، إلى انخفاض كبير في عدد المهاجرين الذين يعبرون الحدود في بداية العام.",
     ["انخفاض"],
     "ما الذي ترتب على ترحيل المكسيك للفنزويليين ومنعها المهاجرين القادمين من غواتيمالا فيما يخص عبور الحدود؟"),
    follow=3)

# 5-6: where/when -> what they will discuss
add(5, "factoid", 1, ["p1"],
    ("Where and when are US and Mexican officials meeting to discuss migration?",
     "In Washington, on Friday.",
     ["Washington", "Friday"], None),
    ("أين ومتى يجتمع المسؤولون الأمريكيون والمكسيكيون لمناقشة الهجرة؟",
     "في واشنطن يوم الجمعة.",
     ["واشنطن", "الجمعة"], None))
add(6, "followup", 1, ["p1"],
    ("What will they discuss there?",
     "Ways to deter illegal migration.",
     ["migration"],
     "What will US and Mexican officials discuss at their Friday meeting in Washington?"),
    ("وما الذي سيناقشونه هناك؟",
     "سبل ردع الهجرة غير الشرعية.",
     ["الهجرة"],
     "ما الذي سيناقشه المسؤولون الأمريكيون والمكسيكيون في اجتماعهم يوم الجمعة في واشنطن؟"),
    follow=5)
add(7, "factoid", 1, ["p1"],
    ("Ahead of which event is the Biden administration under growing pressure to tackle illegal migration?",
     "The presidential election in November.",
     ["election", "November"], None),
    ("قبل أي حدث تتزايد الضغوط على إدارة بايدن لمعالجة قضية الهجرة غير الشرعية؟",
     "قبل الانتخابات الرئاسية في نوفمبر.",
     ["الانتخابات الرئاسية", "نوفمبر"], None))

# 8-10: expectations
add(8, "yesno", 4, ["p4a", "p4b"],
    ("Are any major announcements expected from Friday's meeting?",
     "No. US officials and other sources say they don't expect results; a senior administration official said, \"We don't expect any big announcements tomorrow.\"",
     ["No"], None),
    ("هل يُتوقع صدور إعلانات كبيرة عن اجتماع الجمعة؟",
     "لا، فالمسؤولون الأمريكيون لا يتوقعون نتائج، وقال مسؤول كبير: “لا نتوقع أي إعلانات كبيرة غدًا”.",
     ["لا"], None))
add(9, "followup", 4, ["p4b"],
    ("Who said that, and when?",
     "A senior US administration official, speaking to reporters on Thursday.",
     ["official", "Thursday"],
     "Who said that no big announcements were expected from Friday's US–Mexico meeting, and when?"),
    ("ومن قال ذلك، ومتى؟",
     "مسؤول كبير في الإدارة الأمريكية تحدث إلى الصحفيين يوم الخميس.",
     ["مسؤول", "الخميس"],
     "من قال إنه لا يُتوقع صدور إعلانات كبيرة عن اجتماع الجمعة بين الولايات المتحدة والمكسيك، ومتى؟"),
    follow=8)
add(10, "factoid", 4, ["p4c"],
    ("What did another senior US official say about the talks going forward?",
     "That there will be more discussions over the coming year.",
     ["year"], None),
    ("ماذا قال مسؤول أمريكي كبير آخر عن مستقبل المحادثات؟",
     "قال إنه سيكون هناك المزيد من المناقشات خلال العام المقبل.",
     ["العام المقبل"], None))

# 11-13: root causes
add(11, "factoid", 6, ["p6a"],
    ("What is one of Mexico's priorities in the negotiations?",
     "Persuading the US to agree to allocate large sums to fight migration by \"addressing the root causes\".",
     ["root causes"], None),
    ("ما إحدى أولويات المكسيك في المفاوضات؟",
     "إقناع الولايات المتحدة بالموافقة على تخصيص مبالغ كبيرة لمكافحة الهجرة من خلال “معالجة الأسباب الجذرية”.",
     ["الأسباب الجذرية"], None))
add(12, "followup", 6, ["p6a"],
    ("And what does the article mean by those root causes?",
     "Political corruption, violence and poverty in Western Hemisphere countries.",
     ["corruption", "violence", "poverty"],
     "What root causes of migration does Mexico want the US to help address?"),
    ("وما المقصود بتلك الأسباب الجذرية؟",
     "الفساد السياسي والعنف والفقر في دول نصف الكرة الغربي.",
     ["الفساد السياسي", "العنف", "الفقر"],
     "ما الأسباب الجذرية للهجرة التي تريد المكسيك من الولايات المتحدة المساعدة في معالجتها؟"),
    follow=11)
add(13, "yesno", 6, ["p6b"],
    ("Is the United States interested in working with Mexico to address the root causes of migration?",
     "Yes. A third senior administration official said on Thursday that the US is interested in working with Mexico on the root causes.",
     ["Yes"], None),
    ("هل الولايات المتحدة مهتمة بالعمل مع المكسيك لمعالجة الأسباب الجذرية للهجرة؟",
     "نعم، قال مسؤول ثالث كبير في الإدارة الأمريكية يوم الخميس إن الولايات المتحدة مهتمة بالعمل مع المكسيك لمعالجة الأسباب الجذرية.",
     ["نعم"], None))

# 14-15: López Obrador's requests -> how described
add(14, "list", 7, ["p7a"],
    ("What did Mexican President Andrés Manuel López Obrador publicly call on the US to do?",
     "To distribute $20 billion in aid to Latin American and Caribbean countries and to lift the sanctions on Venezuela, among other requests.",
     ["20 billion", "Venezuela"], None),
    ("إلامَ دعا الرئيس المكسيكي أندريس مانويل لوبيز أوبرادور الولايات المتحدة علنًا؟",
     "إلى توزيع 20 مليار دولار كمساعدات لدول أمريكا اللاتينية ومنطقة البحر الكاريبي وتعليق العقوبات المفروضة على فنزويلا، من بين طلبات أخرى.",
     ["20 مليار", "فنزويلا"], None))
add(15, "followup", 7, ["p7b"],
    ("How did a US official describe his agenda at the time?",
     "As an \"ambitious agenda\".",
     ["ambitious"],
     "How did a US official describe López Obrador's agenda when he publicly called for $20 billion in aid and lifting sanctions on Venezuela?"),
    ("وكيف وصف مسؤول أمريكي أجندته في ذلك الوقت؟",
     "وصفها بأنها “أجندة طموحة”.",
     ["طموحة"],
     "كيف وصف مسؤول أمريكي أجندة لوبيز أوبرادور حين دعا إلى تقديم 20 مليار دولار من المساعدات وتعليق العقوبات على فنزويلا؟"),
    follow=14)

# 16-18: not transactional
add(16, "yesno", 8, ["p8b"],
    ("Would Mexico stop helping the US on migration if the US did not commit to spending $20 billion in the region?",
     "No. Mexico will not stop helping the US on migration even if the US does not commit to spending $20 billion in the region.",
     ["No"], None),
    ("هل ستتوقف المكسيك عن مساعدة الولايات المتحدة في ملف الهجرة إذا لم تلتزم الأخيرة بإنفاق عشرين مليار دولار في المنطقة؟",
     "لا، لن تتوقف المكسيك عن مساعدة الولايات المتحدة فيما يتصل بالهجرة حتى لو لم تلتزم بإنفاق عشرين مليار دولار.",
     ["لن تتوقف"], None))
add(17, "followup", 8, ["p8a", "p8c"],
    ("Why not?",
     "Because the negotiations are not transactional: Mexico has its own interest in curbing illegal migration, since the flow of northbound migrants affects Mexico too.",
     ["own interest"],
     "Why would Mexico keep helping the US on migration even if the US did not commit to spending $20 billion in the region?"),
    ("وما السبب في ذلك؟",
     "لأن المفاوضات ليست قائمة على المعاملات، وللمكسيك مصلحتها الخاصة في الحد من الهجرة غير الشرعية، إذ يؤثر تدفق المهاجرين المتجهين شمالًا عليها أيضًا.",
     ["مصلحتها الخاصة"],
     "لماذا ستواصل المكسيك مساعدة الولايات المتحدة في ملف الهجرة حتى لو لم تلتزم الأخيرة بإنفاق عشرين مليار دولار في المنطقة؟"),
    follow=16)
add(18, "yesno", 8, ["p8a"],
    ("Do US and Mexican officials describe their ongoing negotiations as transactional?",
     "No. They have stressed that the negotiations are not transactional.",
     ["No"], None),
    ("هل يصف المسؤولون الأمريكيون والمكسيكيون مفاوضاتهم الجارية بأنها قائمة على المعاملات؟",
     "لا، أكدوا أن مفاوضاتهم الجارية ليست تتعلق بالمعاملات.",
     ["ليست"], None))

# 19-24: misc factoids
add(19, "factoid", 9, ["p9a", "p9b"],
    ("According to the article, which side holds considerable leverage as the talks continue?",
     "Mexico, because the United States relies heavily on its willingness to help.",
     ["Mexico"], None),
    ("وفقًا للمقالة، أيّ الطرفين يتمتع بقدر كبير من النفوذ مع استمرار المحادثات؟",
     "المكسيك، لأن الولايات المتحدة تعتمد بشكل كبير على استعدادها للمساعدة.",
     ["المكسيك"], None))
add(20, "factoid", 10, ["p10"],
    ("Where was this article originally published?",
     "On NBCNews.com.",
     ["NBCNews"], None),
    ("أين نُشرت هذه المقالة في الأصل؟",
     "على موقع NBCNews.com.",
     ["NBCNews"], None))
add(21, "factoid", 2, ["p2b_main"],
    ("Who is Mexico's foreign minister?",
     "Alicia Bárcena.",
     ["Alicia"], None),
    ("من هي وزيرة الخارجية المكسيكية؟",
     "أليسيا بارسينا.",
     ["بارسينا"], None))
add(22, "factoid", 2, ["p2b"],
    ("Against what backdrop did US officials travel to Mexico in late December?",
     "Amid historic highs in illegal crossings at the US–Mexico border.",
     ["crossings"], None),
    ("في ظل أي ظروف سافر المسؤولون الأمريكيون إلى المكسيك في أواخر ديسمبر؟",
     "وسط ارتفاعات تاريخية في المعابر الحدودية غير القانونية على الحدود بين الولايات المتحدة والمكسيك.",
     ["ارتفاعات تاريخية"], None))
add(23, "factoid", 2, ["p2b_main"],
    ("What position does Alejandro Mayorkas hold?",
     "He is the US Secretary of Homeland Security.",
     ["Homeland Security"], None),
    ("ما المنصب الذي يشغله أليخاندرو مايوركاس؟",
     "وزير الأمن الداخلي الأمريكي.",
     ["وزير الأمن الداخلي"], None))
add(24, "factoid", 5, ["p5"],
    ("According to whom have both sides set clear goals for what they want from the negotiations?",
     "According to sources who spoke to NBC News earlier this month.",
     ["NBC"], None),
    ("وفقًا لمن وضع الجانبان أهدافًا واضحة لما يريدانه من المفاوضات؟",
     "وفقًا لمصادر تحدثت إلى شبكة إن بي سي نيوز في وقت سابق من هذا الشهر.",
     ["إن بي سي نيوز"], None))

# 25-33: unanswerable (on-topic, not covered by the article)
U = [
    ("What has Canada asked for in these migration talks?",
     "ماذا طلبت كندا في محادثات الهجرة هذه؟"),
    ("How many migrants crossed the US–Mexico border illegally in December?",
     "كم عدد المهاجرين الذين عبروا الحدود الأمريكية المكسيكية بشكل غير قانوني في ديسمبر؟"),
    ("Who is the president of Guatemala?",
     "من هو رئيس غواتيمالا؟"),
    ("How many Venezuelans has Mexico deported since the December talks?",
     "كم عدد الفنزويليين الذين رحّلتهم المكسيك منذ محادثات ديسمبر؟"),
    ("What agreements came out of Friday's meeting in Washington?",
     "ما الاتفاقات التي أسفر عنها اجتماع الجمعة في واشنطن؟"),
    ("What specific sanctions does the US currently impose on Venezuela?",
     "ما العقوبات المحددة التي تفرضها الولايات المتحدة حاليًا على فنزويلا؟"),
    ("By what percentage did border crossings fall at the beginning of the year?",
     "بأي نسبة انخفض عدد العابرين للحدود في بداية العام؟"),
    ("In which Mexican city were the December 27 talks held?",
     "في أي مدينة مكسيكية عُقدت محادثات 27 ديسمبر؟"),
    ("How much has the US already spent on addressing the root causes of migration in Central America?",
     "كم أنفقت الولايات المتحدة حتى الآن على معالجة الأسباب الجذرية للهجرة في أمريكا الوسطى؟"),
]


def pid(n):
    return "seed-%03d" % n


rows = []
for p in P:
    spans = sorted(span(k) for k in p["keys"])
    for lang in ("en", "ar"):
        q, a, kf, standalone = p[lang]
        rows.append({
            "id": "%s-%s" % (pid(p["n"]), lang),
            "pair": pid(p["n"]),
            "lang": lang,
            "question": q,
            "answerable": True,
            "article_id": ARTICLE_ID,
            "paragraph": p["para"],
            "gold_spans": spans,
            "key_facts": kf,
            "answer": a,
            "type": p["type"],
            "follow_up_of": ("%s-%s" % (pid(p["follow"]), lang)) if p["follow"] else None,
            "standalone": standalone,
        })
n0 = len(P)
for i, (qe, qa) in enumerate(U, start=n0 + 1):
    for lang, q in (("en", qe), ("ar", qa)):
        rows.append({
            "id": "%s-%s" % (pid(i), lang), "pair": pid(i), "lang": lang,
            "question": q, "answerable": False, "article_id": ARTICLE_ID,
            "paragraph": None, "gold_spans": [], "key_facts": [], "answer": "",
            "type": "factoid", "follow_up_of": None, "standalone": None,
        })

with open(OUT, "w", encoding="utf-8") as f:
    for r in rows:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
print("wrote", len(rows), "questions to", OUT)
