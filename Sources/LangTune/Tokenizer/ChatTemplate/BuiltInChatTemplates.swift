/// Chat templates LangTune supplies when a model file carries none.
///
/// GGUF conversions of Gemma 3 often drop `tokenizer.chat_template` (the 270M Q4_K_M file
/// LangTune fetches has none), while every Gemma 3 repository publishes the same template in
/// its tokenizer_config.json; llama.cpp likewise falls back to a built-in Gemma format.
public enum BuiltInChatTemplates {
    /// The template for a GGUF `general.architecture`, or nil.
    public static func template(forArchitecture architecture: String) -> String? {
        architecture == "gemma3" ? gemma3 : nil
    }

    /// Gemma 3's template, as in google/gemma-3-* tokenizer_config.json (the system message is
    /// folded into the first user turn; the assistant role is called `model`).
    public static let gemma3 = #"""
{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
"""#
}
