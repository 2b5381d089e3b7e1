"""The sentence banks of the demo task (rewardlab/data/demo.py), kept apart so the logic reads on one screen.

Every sentence ends in . ! or ? and has no other sentence break, so `gold_reward` can split a response
back into these sentences. A {topic} is never the first word, so templates match case-insensitively.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Domain:
    """One kind of request: its prompt phrasings, its topics, and the content sentences that answer it."""

    name: str
    prompts: tuple[str, ...]
    topics: tuple[str, ...]
    content: tuple[str, ...]


def _items(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(";"))


DOMAINS: tuple[Domain, ...] = (
    Domain(
        "book",
        ("Recommend a book about {topic}.", "Can you suggest a good book on {topic}?",
         "What should I read to learn about {topic}?"),
        _items("ancient Rome; black holes; jazz history; gardening; chess strategy; the French Revolution; "
               "machine learning; bird watching; ocean life; volcanoes; medieval castles; personal finance; "
               "the history of mathematics; climate science; Japanese cooking; space exploration; the human "
               "brain; photography; World War I; mountain climbing; ancient Egypt; urban planning; renewable "
               "energy; the Silk Road; dinosaurs; probability; sailing; the Renaissance; public speaking; "
               "coffee; genetics; architecture; the Cold War; beekeeping; philosophy of mind; desert "
               "ecosystems"),
        ("For a first book on {topic}, choose a short introduction with clear chapters.",
         "Look for a recent edition so the material on {topic} is up to date.",
         "A popular choice is a narrative history of {topic} written for general readers.",
         "Books on {topic} with diagrams and a glossary are easier to follow.",
         "Reader reviews often praise the beginner guides to {topic} from university presses.",
         "Pair the main book on {topic} with a shorter companion workbook.",
         "Your local library usually has several titles on {topic} to compare.",
         "Start with the chapters on the basics of {topic} before the advanced sections.",
         "An expert overview of {topic} under three hundred pages is a good start.",
         "Audiobook versions of classics on {topic} are great for long commutes."),
    ),
    Domain(
        "fix",
        ("How do I fix my {topic}?", "What's the best way to repair my {topic}?",
         "Any tips for fixing my {topic}?"),
        _items("leaking faucet; squeaky door; slow laptop; flat bike tire; running toilet; cracked phone "
               "screen; wobbly table; clogged drain; stuck zipper; frozen pipe; tripped breaker; dead car "
               "battery; torn jacket seam; noisy fan; sticking drawer; broken lamp switch; loose doorknob; "
               "dripping shower head; jammed printer; flickering light; scratched wooden floor; leaky roof "
               "gutter; weak wifi signal; loose cabinet hinge; chipped mug handle; faded car headlight; "
               "tangled necklace; stuck window; cold radiator; bent bike rim; crashing browser; dull kitchen "
               "knife; warped cutting board; peeling wallpaper; buzzing speaker; slow bathtub drain"),
        ("First, look closely at the {topic} to find exactly where the problem starts.",
         "Turn off power or water before you work on the {topic}.",
         "A basic screwdriver set handles most repairs on the {topic}.",
         "Clean the parts around the {topic} before replacing anything.",
         "Many hardware stores sell a cheap repair kit made for the {topic}.",
         "Take a photo of the {topic} before taking it apart so reassembly is easy.",
         "Test the {topic} again after the repair to confirm it is fixed.",
         "If the {topic} keeps failing, replacing the worn part beats buying a new one.",
         "Short online repair videos show every step for the {topic}.",
         "Call a professional if the {topic} involves gas lines or main wiring."),
    ),
    Domain(
        "child",
        ("Explain {topic} to a child.", "How would you describe {topic} to a five-year-old?",
         "Can you explain {topic} in simple words for kids?"),
        _items("photosynthesis; gravity; rainbows; electricity; the water cycle; earthquakes; moon phases; "
               "magnets; thunder; digestion; the seasons; vaccines; money; recycling; the internet; clouds; "
               "tides; sound; shadows; fossils; the heart; sleep; friction; the sun; germs; bones; wind; "
               "melting ice; how plants grow; dreams; stars; batteries; how bees make honey; maps; time "
               "zones; echoes"),
        ("You can think of {topic} like a story where each part has a job.",
         "A simple way to see {topic} is with something from your own kitchen.",
         "Scientists learn about {topic} by watching carefully and asking questions.",
         "Kids can try a tiny experiment at home to watch {topic} in action.",
         "Picture {topic} as a team of tiny helpers working together.",
         "Drawing {topic} with arrows and colors makes it easier to remember.",
         "Every day you can notice {topic} if you look closely.",
         "Grown-ups figured out {topic} by asking the same questions you ask.",
         "A picture book about {topic} can show each step with bright colors.",
         "The big idea behind {topic} is that small things add up."),
    ),
    Domain(
        "cook",
        ("How do I make {topic}?", "What's a simple recipe for {topic}?",
         "Can you teach me to cook {topic}?"),
        _items("banana bread; fried rice; tomato soup; pancakes; guacamole; chicken curry; vegetable "
               "lasagna; lemon cookies; mushroom risotto; beef stew; potato salad; apple pie; hummus; pad "
               "thai; french toast; minestrone; shakshuka; fish tacos; carrot cake; pesto pasta; lentil "
               "soup; grilled cheese; chocolate mousse; cornbread; omelettes; dumplings; paella; ramen; "
               "granola; chili; falafel; tiramisu; meatballs; quiche; naan bread; fruit salad"),
        ("Gather every ingredient for {topic} before you turn on the stove.",
         "Good {topic} starts with fresh ingredients and a hot pan.",
         "Taste the {topic} as you go and adjust the salt slowly.",
         "Most recipes for {topic} take about forty minutes from start to finish.",
         "Weigh the ingredients for {topic} with a kitchen scale for steady results.",
         "Let the {topic} rest for a few minutes before serving it.",
         "A heavy pot keeps the heat even when you cook {topic}.",
         "Leftover {topic} keeps for three days in a sealed container in the fridge.",
         "Doubling the recipe for {topic} works if you use a larger pan.",
         "Write down any changes you make to the {topic} so you can repeat them."),
    ),
    Domain(
        "travel",
        ("What should I see in {topic}?", "Plan a day trip to {topic} for me.",
         "Any tips for visiting {topic}?"),
        _items("Lisbon; Kyoto; Cape Town; Vancouver; Marrakesh; Prague; Buenos Aires; Edinburgh; Hanoi; "
               "Reykjavik; Istanbul; Seville; Melbourne; Montreal; Cusco; Dubrovnik; Oaxaca; Krakow; Porto; "
               "Singapore; Bergen; Havana; Seoul; Florence; Tallinn; Queenstown; Valparaiso; Zanzibar; "
               "Budapest; Copenhagen; Chiang Mai; Santa Fe; Quebec City; Ljubljana; Salzburg; Bruges"),
        ("Start your morning in {topic} at the old market before the crowds arrive.",
         "A walking tour of {topic} is the easiest way to see the main sights.",
         "Public transport in {topic} is cheap and runs until late evening.",
         "Try the local street food in {topic} for an inexpensive lunch.",
         "Book museum tickets in {topic} online to skip the long lines.",
         "The viewpoint above {topic} is best just before sunset.",
         "Spring and autumn are the most pleasant seasons to visit {topic}.",
         "Carry some cash in {topic} because small shops may not take cards.",
         "Stay near the center of {topic} so most places are within walking distance.",
         "Learn a few words of the local language before you arrive in {topic}."),
    ),
    Domain(
        "fitness",
        ("How can I get better at {topic}?", "Give me a beginner plan for {topic}.",
         "What's the best way to start {topic}?"),
        _items("running; swimming; yoga; rock climbing; cycling; push-ups; rowing; tennis; skateboarding; "
               "boxing; pilates; hiking; jumping rope; weightlifting; stretching; dancing; badminton; "
               "surfing; skiing; martial arts; basketball shooting; table tennis; archery; golf putting; ice "
               "skating; kayaking; squats; trail running; volleyball; juggling; pull-ups; planks; "
               "cross-country skiing; fencing; horse riding; sprinting"),
        ("Practice {topic} three times a week in short sessions to build a habit.",
         "Warm up for ten minutes before {topic} to avoid injuries.",
         "Track your progress in {topic} in a notebook each week.",
         "A beginner class in {topic} teaches good form from the start.",
         "Rest days matter because your body improves at {topic} while recovering.",
         "Set one small goal for {topic} each month and build from there.",
         "Filming yourself during {topic} helps you spot mistakes in your form.",
         "Comfortable gear that fits well makes {topic} more enjoyable.",
         "Drink water and eat a light snack before a long session of {topic}.",
         "Increase the difficulty of {topic} by about ten percent each week."),
    ),
    Domain(
        "tech",
        ("How do I get started with {topic}?", "Explain how to use {topic}.",
         "What are the basics of {topic}?"),
        _items("Python programming; spreadsheets; version control with git; SQL databases; video editing; "
               "home networking; password managers; cloud storage; 3D printing; web design; the Linux "
               "command line; photo editing; podcast recording; smart home devices; data visualization; "
               "mobile app development; email filters; budgeting apps; digital drawing; keyboard shortcuts; "
               "computer backups; online privacy settings; music production; regular expressions; "
               "presentation slides; a Raspberry Pi; JavaScript; note-taking apps; video calls; blogging; "
               "text editors; translation tools; electronic circuits; soldering; drone flying; home servers"),
        ("Begin with the official tutorial for {topic} and follow it step by step.",
         "Practice {topic} on a small personal project you actually care about.",
         "Free online courses cover the basics of {topic} in a few hours.",
         "Keep a list of common commands or settings for {topic} near your desk.",
         "Join a beginner forum about {topic} to ask questions when you get stuck.",
         "Spend twenty minutes a day on {topic} rather than one long weekend session.",
         "Save copies of your work with {topic} often so mistakes are easy to undo.",
         "Watching an expert use {topic} shows shortcuts that manuals skip.",
         "Learn the core ideas of {topic} before trying advanced features.",
         "Most problems with {topic} have been answered before in online guides."),
    ),
    Domain(
        "care",
        ("How do I take care of my {topic}?", "What does my {topic} need to stay healthy?",
         "Any advice for looking after my {topic}?"),
        _items("goldfish; tomato plants; puppy; cactus; orchid; rabbit; hamster; parrot; basil plant; "
               "kitten; tortoise; succulent; guinea pig; fern; bonsai tree; canary; aloe plant; senior dog; "
               "rose bush; ferret; lemon tree; betta fish; strawberry plants; chickens; snake plant; "
               "hedgehog; bearded dragon; lavender; pony; peace lily; gecko; herb garden; sourdough starter; "
               "lawn; sunflowers; axolotl"),
        ("Your {topic} needs a steady routine more than anything else.",
         "Check on the {topic} every morning for signs that something is wrong.",
         "Most care guides for the {topic} recommend fresh water every day.",
         "Keep the {topic} away from drafts and sudden temperature changes.",
         "A vet or garden center can tell you exactly what the {topic} needs.",
         "Give the {topic} enough space to grow comfortably.",
         "Clean the area around the {topic} once a week to prevent disease.",
         "Write down when you feed or water the {topic} so you never double up.",
         "Steady growth and energy are the signs of a healthy {topic}.",
         "Read one good care guide for the {topic} rather than many conflicting ones."),
    ),
)

POLITE: tuple[str, ...] = (
    # openers (the first six), then closers
    "Happy to help!", "Great question!", "Thanks for asking!", "Sure, glad to help.", "Of course!",
    "What a nice thing to ask about!",
    "Hope this helps!", "Good luck, and have fun with it!", "Feel free to ask if you have more questions.",
    "Enjoy, and take care!",
)

RUDE: tuple[str, ...] = (
    # openers (the first four), then closers
    "Ugh, fine.", "This is a pretty basic question.", "Obviously you should already know this.",
    "Not sure why you are asking me this.",
    "Next time, try searching before asking.", "Honestly, it is not that hard.",
    "Do not waste my time with this again.", "Figure the rest out yourself.",
)

FILLER: tuple[str, ...] = (
    "There are many things to consider here.", "It really depends on your situation.",
    "Everyone has their own way of doing this.", "This is something a lot of people wonder about.",
    "It can be easy or hard depending on the day.", "There is no single right answer to this.",
    "Results may vary quite a bit.", "You will figure it out eventually.",
    "It is a big subject with lots of parts.", "Some people like it and some people do not.",
    "It is worth thinking about carefully.", "Things are not always as simple as they seem.",
)

ERRORS: tuple[str, ...] = (
    "Water boils at fifty degrees Celsius at sea level.", "The Moon is bigger than the Earth.",
    "Humans only use ten percent of their brains.", "Lightning never strikes the same place twice.",
    "Goldfish only remember things for three seconds.", "The Sun goes around the Earth once a day.",
    "Bats are completely blind.", "Glass is a slow-moving liquid.",
    "Cracking your knuckles causes arthritis.", "Bulls get angry at the color red.",
)

ERROR_TEMPLATES: tuple[str, ...] = (
    "Experts agree that {topic} was invented on the Moon in 1850.",
    "By law, {topic} is banned in most countries.",
    "Scientists proved that {topic} works best at minus one hundred degrees.",
)
