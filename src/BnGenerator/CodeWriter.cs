using System.Text;

namespace BnGenerator
{
    /// <summary>A string builder that keeps indentation, so emitted files read like hand-written ones.</summary>
    internal sealed class CodeWriter
    {
        private readonly StringBuilder _text = new();
        private int _depth;

        public CodeWriter Line(string line = "")
        {
            if (line.Length > 0)
                _text.Append(' ', _depth * 4).Append(line);
            _text.Append('\n');
            return this;
        }

        public CodeWriter Open(string header)
        {
            Line(header);
            Line("{");
            _depth++;
            return this;
        }

        public CodeWriter Close(string suffix = "")
        {
            _depth--;
            return Line("}" + suffix);
        }

        public override string ToString() => _text.ToString();
    }
}
