"""Word lists per language: stop words for matching, marker words for language detection,
greetings and thanks. All in normalised form (lower case, no accents)."""

from __future__ import annotations

STOP_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset("""a an the and or but if of to in on at by for with from about as into is are was were be
        been being am do does did doing have has had having i me my we our you your he him his she her it
        its they them their this that these those there here what which who whom how why when where can
        could would should will shall may might must not no so than too very just also any some all
        get got go going im please pls hi hello thanks""".split()),
    "pt": frozenset("""a o as os um uma uns umas e ou mas se de do da dos das em no na nos nas por pelo pela
        para pra pro com sem sobre ao aos que quem qual quais como onde quando porque por que eu me mim
        meu minha meus minhas voce voces ele ela eles elas nos nosso nossa seu sua seus suas isso isto
        esse essa este esta aquele aquela ja tambem muito mais menos so ser estar e esta estou sou foi
        tem ter tenho ha nao sim oi ola obrigado obrigada favor""".split()),
    "es": frozenset("""el la los las un una unos unas y o pero si de del al en por para con sin sobre que
        quien cual cuales como donde cuando porque yo me mi mis tu tus te usted ustedes el ella ellos
        ellas nos nosotros nuestro nuestra su sus eso esto ese esa este esta aquel ya tambien muy mas
        menos solo ser estar es esta estoy soy fue hay tengo tiene tener no le les lo hola gracias
        favor""".split()),
    "ht": frozenset("""a an la lan nan yo mwen ou li nou m w n y l ki sa se e oswa men si de pou ak avek sou
        nan ke kisa kiyes kijan kouman kote kile poukisa paske mwen an ou a li a pa ap te va ta ka kapab
        gen genyen fe bon byen tou deja konn eske wi non mesi bonjou bonswa souple tanpri
        sak""".split()),
}

# Words that are frequent in one language and rare in the others: evidence for detection.
MARKERS: dict[str, frozenset[str]] = {
    "en": frozenset("""the and what how my is are do does you your can i me they with have where who when
        why if at to of there this that will would should please help need get home work police car
        door wife husband son daughter family lawyer court"""
        .split()),
    "pt": frozenset("""voce voces nao que o os um uma meu minha tem tenho estou esta sao com para pra
        sobre como onde quando porque isso esse essa ele ela eles elas fazer faco posso pode preciso
        ajuda policia porta casa trabalho marido esposa filho filha advogado familia federais
        imigracao tambem muito entao agora aqui ainda ja gente""".split()),
    "es": frozenset("""que el los las un una mi mis tengo tiene estoy esta son con para por como donde
        cuando porque eso ese esa el ella ellos hacer hago puedo puede necesito ayuda policia puerta
        casa trabajo esposo esposa hijo hija abogado familia migra inmigracion tambien muy entonces
        ahora aqui todavia ya usted hay""".split()),
    "ht": frozenset("""mwen ou li nou yo pa ki sa se kisa kijan kouman kote poukisa paske gen genyen fe
        ka kapab vle bezwen ede lapolis polis pot kay lakay travay mari madanm pitit avoka fanmi
        imigrasyon ap te va ta konn si pou ak nan yon m w tanpri souple eske kounye a la la mesi men
        anpil deyo""".split()),
}

GREETINGS: dict[str, frozenset[str]] = {
    "en": frozenset({"hi", "hello", "hey", "good morning", "good afternoon", "good evening", "hiya",
                     "yo", "howdy", "hi there", "hello there", "morning", "hey there"}),
    "pt": frozenset({"oi", "ola", "bom dia", "boa tarde", "boa noite", "e ai", "opa", "oie", "oii",
                     "oi tudo bem", "ola tudo bem", "tudo bem", "tudo bom", "oi bom dia"}),
    "es": frozenset({"hola", "buenos dias", "buenas tardes", "buenas noches", "buenas", "que tal",
                     "hola que tal", "hola buenos dias", "saludos", "buen dia"}),
    "ht": frozenset({"bonjou", "bonswa", "alo", "sak pase", "sa k pase", "sa ki pase", "bonjou mwen",
                     "kouman ou ye", "kijan ou ye", "bonjou bonswa", "sakpase", "onè", "one"}),
}

THANKS: dict[str, frozenset[str]] = {
    "en": frozenset({"thanks", "thank you", "thx", "ty", "thank u", "thanks a lot", "many thanks",
                     "ok thanks", "ok thank you", "great thanks", "thanks so much", "thank you so much"}),
    "pt": frozenset({"obrigado", "obrigada", "valeu", "obg", "vlw", "muito obrigado",
                     "muito obrigada", "brigado", "brigada", "ok obrigado", "ok obrigada", "grato",
                     "grata"}),
    "es": frozenset({"gracias", "muchas gracias", "mil gracias", "grax", "ok gracias",
                     "gracias amigo", "se lo agradezco", "muy amable"}),
    "ht": frozenset({"mesi", "mesi anpil", "mesi bokou", "ok mesi", "mesi anpil anpil", "mesi zanmi",
                     "mesi pou sa", "bondye beni ou"}),
}
